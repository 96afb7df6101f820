// Perf event arrays (bench/bpf/perf_bench.bpf.c) with perf.Reader (wakeup_events = 1, as
// libbpf's perf_buffer and bpfkit's PerfReader by default).
//
//	perf drain OBJECT ROUNDS RECORDS PER_RUN CPU PAGES
//	    ROUNDS times: writes RECORDS samples from CPU (BPF_PROG_TEST_RUN of perf_produce,
//	    PER_RUN samples per run), then times reading them back. Prints {"rates":[samples/s per
//	    round],"count":N,"sum":S,"lost":L,"dropped":D}.
//
//	perf live OBJECT PIN_DIR MS PER_RUN CPU PRODUCER_CPU PAGES PRODUCER
//	    Reads while `PRODUCER produce` (bench/c/perf-consumer) runs perf_produce on PRODUCER_CPU
//	    for MS milliseconds. Prints {"count","sum","lost","ns","produced","dropped"}.
package main

import (
	"encoding/binary"
	"errors"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
)

func openPerf(coll *ebpf.Collection, pages string) *perf.Reader {
	rd, err := perf.NewReader(coll.Maps["events"], atoi(pages)*os.Getpagesize())
	if err != nil {
		die("perf.NewReader", err)
	}
	return rd
}

// perfCommand is the 14-byte test-run input of perf_produce: u32 count.
func perfCommand(count uint32) []byte {
	b := make([]byte, 14)
	binary.LittleEndian.PutUint32(b, count)
	return b
}

func perfDrain(args []string) {
	rounds, records, perRun := atoi(args[1]), atoi(args[2]), atoi(args[3])
	// Before loading: the samples land in the ring of the CPU the test runs are made from.
	pinCPU(atoi(args[4]))
	coll := load(args[0])
	rd := openPerf(coll, args[5])
	prog := coll.Programs["perf_produce"]
	in := perfCommand(uint32(perRun))
	var rec perf.Record
	var count, sum, lost uint64
	rates := []float64{}
	for r := 0; r < rounds; r++ {
		fill(prog, in, records/perRun, perRun)
		t0 := time.Now()
		for n := 0; n < records; {
			if err := rd.ReadInto(&rec); err != nil {
				die("ReadInto", err)
			}
			if rec.LostSamples > 0 {
				lost += rec.LostSamples
				continue
			}
			sum += binary.LittleEndian.Uint64(rec.RawSample)
			count++
			n++
		}
		rates = append(rates, float64(records)/time.Since(t0).Seconds())
	}
	_, dropped := stats(coll)
	emit(map[string]interface{}{"rates": rates, "count": count, "sum": sum, "lost": lost, "dropped": dropped})
}

type perfLiveReader struct {
	rd  *perf.Reader
	rec perf.Record
}

func (l *perfLiveReader) next() (uint64, bool, error) {
	if err := l.rd.ReadInto(&l.rec); err != nil {
		return 0, false, err
	}
	if l.rec.LostSamples > 0 {
		return l.rec.LostSamples, false, nil
	}
	return binary.LittleEndian.Uint64(l.rec.RawSample), true, nil
}

func (l *perfLiveReader) closed(err error) bool { return errors.Is(err, perf.ErrClosed) }
func (l *perfLiveReader) Close() error          { return l.rd.Close() }

func perfLive(args []string) {
	pinCPU(atoi(args[4]))
	coll := load(args[0])
	live(coll, "perf_produce", args[1], args[7], []string{args[2], args[3], args[5]}, func() liveReader {
		return &perfLiveReader{rd: openPerf(coll, args[6])}
	})
}
