// The cilium/ebpf side of bench/ringbuf.bench.ts and bench/perf.bench.ts: consumes the records
// of bench/bpf/ringbuf_bench.bpf.c and bench/bpf/perf_bench.bpf.c with cilium/ebpf's readers,
// as bench/c/ringbuf-consumer.c and bench/c/perf-consumer.c do with libbpf. Built in GOPATH mode
// against Debian's golang-github-cilium-ebpf-dev (no network).
//
//	cilium-consumer ringbuf drain|live ...   (see ringbuf.go)
//	cilium-consumer perf drain|live ...      (see perf.go)
//
// Both read with ReadInto and one reused Record, the fastest loop cilium/ebpf offers, and print
// the same JSON as the C consumers. Live runs use the C consumer's producer (its `produce` mode).
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

func die(what string, err error) {
	fmt.Fprintf(os.Stderr, "cilium-consumer: %s: %v\n", what, err)
	os.Exit(1)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		die("argument "+s, err)
	}
	return n
}

// pinCPU keeps the calling goroutine on its thread and that thread on cpu (-1: anywhere).
func pinCPU(cpu int) {
	runtime.LockOSThread()
	if cpu < 0 {
		return
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		die("sched_setaffinity", err)
	}
}

func load(path string) *ebpf.Collection {
	if err := rlimit.RemoveMemlock(); err != nil {
		die("memlock", err)
	}
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		die("LoadCollectionSpec", err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		die("NewCollection", err)
	}
	return coll
}

// stats[0] = { produced, dropped }, as the bench programs count them.
func stats(coll *ebpf.Collection) (produced, dropped uint64) {
	var v [16]byte
	if err := coll.Maps["stats"].Lookup(uint32(0), &v); err != nil {
		die("stats lookup", err)
	}
	return binary.LittleEndian.Uint64(v[0:]), binary.LittleEndian.Uint64(v[8:])
}

func emit(v interface{}) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		die("output", err)
	}
}

// fill runs prog `runs` times with input `in`; each run must write perRun records.
func fill(prog *ebpf.Program, in []byte, runs, perRun int) {
	for k := 0; k < runs; k++ {
		ret, err := prog.Run(&ebpf.RunOptions{Data: in})
		if err != nil {
			die("BPF_PROG_TEST_RUN", err)
		}
		if int(ret) != perRun {
			die("fill", fmt.Errorf("the kernel took %d of %d records", ret, perRun))
		}
	}
}

// A reader as both live runs use it: read one record (its first u64 and whether it was a
// sample), or fail with an error once closed.
type liveReader interface {
	next() (seq uint64, sample bool, err error)
	closed(err error) bool
	Close() error
}

// live pins progName at dir/prog, runs `producer produce PIN args...` and reads with rd until
// the producer has exited and every record it produced was read. Prints the C consumers' JSON.
func live(coll *ebpf.Collection, progName, dir, producer string, args []string, open func() liveReader) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		die("mkdir", err)
	}
	defer os.RemoveAll(dir)
	pin := filepath.Join(dir, "prog")
	if err := coll.Programs[progName].Pin(pin); err != nil {
		die("pin", err)
	}
	rd := open()
	var count uint64
	var target int64 = -1 // set once the producer has exited: how many records it produced
	cmd := exec.Command(producer, append([]string{"produce", pin}, args...)...)
	cmd.Stderr = os.Stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		die("producer", err)
	}
	go func() {
		if err := cmd.Wait(); err != nil {
			die("producer", err)
		}
		produced, _ := stats(coll)
		atomic.StoreInt64(&target, int64(produced))
		// The reader may wait for a record that will never come: end it once all are read.
		for atomic.LoadUint64(&count) < produced {
			time.Sleep(time.Millisecond)
		}
		rd.Close()
	}()
	var sum, lost uint64
	last := t0
	for {
		seq, sample, err := rd.next()
		if err != nil {
			if rd.closed(err) {
				break
			}
			die("ReadInto", err)
		}
		last = time.Now()
		if !sample {
			lost += seq
			continue
		}
		sum += seq
		n := atomic.AddUint64(&count, 1)
		if t := atomic.LoadInt64(&target); t >= 0 && int64(n) >= t {
			break
		}
	}
	produced, dropped := stats(coll)
	emit(map[string]interface{}{"count": atomic.LoadUint64(&count), "sum": sum, "lost": lost, "ns": last.Sub(t0).Nanoseconds(), "produced": produced, "dropped": dropped})
}

func main() {
	usage := `usage: cilium-consumer ringbuf drain OBJECT ROUNDS RECORDS PER_RUN CPU
       cilium-consumer ringbuf live OBJECT PIN_DIR MS PER_RUN CPU PRODUCER_CPU PRODUCER
       cilium-consumer perf drain OBJECT ROUNDS RECORDS PER_RUN CPU PAGES
       cilium-consumer perf live OBJECT PIN_DIR MS PER_RUN CPU PRODUCER_CPU PAGES PRODUCER`
	a := os.Args[1:]
	switch {
	case len(a) == 7 && a[0] == "ringbuf" && a[1] == "drain":
		ringbufDrain(a[2:])
	case len(a) == 9 && a[0] == "ringbuf" && a[1] == "live":
		ringbufLive(a[2:])
	case len(a) == 8 && a[0] == "perf" && a[1] == "drain":
		perfDrain(a[2:])
	case len(a) == 10 && a[0] == "perf" && a[1] == "live":
		perfLive(a[2:])
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}
