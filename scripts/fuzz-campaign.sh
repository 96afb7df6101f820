#!/usr/bin/env bash
# A long fuzz campaign that survives its starter and resumes where it stopped:
#   setsid nohup bash scripts/fuzz-campaign.sh SEED START END LOG [OUT] >/dev/null 2>&1 &
# runs inputs START..END-1 of the campaign SEED (test/fuzz/main.js, after `npm run build`) at
# nice 19 in chunks of 10,000, appending progress and findings to LOG. A chunk ended by the
# watchdog (a hang) resumes at the run after the hung one; rerunning the script with the START
# of the last "chunk done" line continues an interrupted campaign. Ranges split the campaign:
# every run's input depends only on SEED and its index.
set -u
seed=$1 start=$2 end=$3 log=$4
out=${5:-$(dirname "$log")/fuzz-findings}
cd "$(dirname "$0")/.."
chunk=10000
run=$start
while [ "$run" -lt "$end" ]; do
  n=$(( end - run < chunk ? end - run : chunk ))
  echo "$(date -u +%FT%TZ) chunk: runs $run to $(( run + n - 1 ))" >>"$log"
  nice -n 19 node dist/test/fuzz/main.js --seed "$seed" --start "$run" --runs "$n" --out "$out" >>"$log" 2>&1
  rc=$?
  if [ "$rc" -le 1 ]; then
    run=$(( run + n ))
    echo "$(date -u +%FT%TZ) chunk done (exit $rc): next run $run" >>"$log"
    continue
  fi
  # Killed by the watchdog (or otherwise): resume after the last run the log names as hung.
  hung=$(grep -o 'hang: run [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  if [ -n "$hung" ] && [ "$hung" -ge "$run" ]; then
    run=$(( hung + 1 ))
    echo "$(date -u +%FT%TZ) chunk ended by the watchdog (exit $rc): resuming at run $run" >>"$log"
  else
    echo "$(date -u +%FT%TZ) chunk failed (exit $rc) without a hang line: stopping at run $run" >>"$log"
    exit 1
  fi
done
echo "$(date -u +%FT%TZ) campaign done: runs $start to $(( end - 1 )), seed $seed" >>"$log"
