// The cilium/ebpf side of bench/ringbuf.bench.ts: consumes the records of
// bench/bpf/ringbuf_bench.bpf.c with ringbuf.Reader.ReadInto (one reused
// Record, the fastest loop cilium/ebpf offers), as bench/c/ringbuf-consumer.c
// does with libbpf. Built in GOPATH mode against Debian's
// golang-github-cilium-ebpf-dev (no network).
//
//	ringbuf-consumer-go drain OBJECT ROUNDS RECORDS PER_RUN CPU
//	    ROUNDS times: fills the ring with RECORDS records (BPF_PROG_TEST_RUN of
//	    rb_produce, PER_RUN records per run, each run's last record waking the
//	    reader), then times reading them back.
//	    Prints {"rates":[records/s per round],"count":N,"sum":S,"dropped":D}.
//
//	ringbuf-consumer-go live OBJECT PIN_DIR MS PER_RUN CPU PRODUCER_CPU PRODUCER
//	    Pins rb_produce at PIN_DIR/prog, starts `PRODUCER produce ...` (the C
//	    producer) on PRODUCER_CPU for MS milliseconds and reads until it has
//	    exited and every record it produced was read. Prints {"count":N,"sum":S,
//	    "ns":from starting the producer to the last record,"produced":P,"dropped":D}.
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

func die(what string, err error) {
	fmt.Fprintf(os.Stderr, "ringbuf-consumer-go: %s: %v\n", what, err)
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

// command is the 14-byte test-run input of rb_produce: u32 count, u32 flags, u32 last_flags.
func command(count, flags, lastFlags uint32) []byte {
	b := make([]byte, 14)
	binary.LittleEndian.PutUint32(b[0:], count)
	binary.LittleEndian.PutUint32(b[4:], flags)
	binary.LittleEndian.PutUint32(b[8:], lastFlags)
	return b
}

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

// bpf_ringbuf_submit flags.
const (
	noWakeup    = 1 // BPF_RB_NO_WAKEUP
	forceWakeup = 2 // BPF_RB_FORCE_WAKEUP
)

func drain(args []string) {
	coll := load(args[0])
	rounds, records, perRun := atoi(args[1]), atoi(args[2]), atoi(args[3])
	pinCPU(atoi(args[4]))
	rd, err := ringbuf.NewReader(coll.Maps["ring"])
	if err != nil {
		die("ringbuf.NewReader", err)
	}
	prog := coll.Programs["rb_produce"]
	// The last record of each run wakes the reader: ReadInto always starts with epoll_wait, and
	// epoll learns that the ring's fd is readable only from a wakeup (the fill is not timed).
	fill := command(uint32(perRun), noWakeup, forceWakeup)
	var rec ringbuf.Record
	var count, sum uint64
	rates := []float64{}
	for r := 0; r < rounds; r++ {
		for k := 0; k < records/perRun; k++ {
			ret, err := prog.Run(&ebpf.RunOptions{Data: fill})
			if err != nil {
				die("BPF_PROG_TEST_RUN", err)
			}
			if int(ret) != perRun {
				die("fill", fmt.Errorf("the ring took %d of %d records", ret, perRun))
			}
		}
		t0 := time.Now()
		for i := 0; i < records; i++ {
			if err := rd.ReadInto(&rec); err != nil {
				die("ReadInto", err)
			}
			sum += binary.LittleEndian.Uint64(rec.RawSample)
			count++
		}
		rates = append(rates, float64(records)/time.Since(t0).Seconds())
	}
	_, dropped := stats(coll)
	emit(map[string]interface{}{"rates": rates, "count": count, "sum": sum, "dropped": dropped})
}

func live(args []string) {
	coll := load(args[0])
	dir := args[1]
	ms, perRun, cpu, producerCPU := args[2], args[3], atoi(args[4]), args[5]
	producer := args[6]
	if err := os.MkdirAll(dir, 0o700); err != nil {
		die("mkdir", err)
	}
	defer os.RemoveAll(dir)
	pin := filepath.Join(dir, "prog")
	if err := coll.Programs["rb_produce"].Pin(pin); err != nil {
		die("pin", err)
	}
	pinCPU(cpu)
	rd, err := ringbuf.NewReader(coll.Maps["ring"])
	if err != nil {
		die("ringbuf.NewReader", err)
	}
	var count uint64
	// Set once the producer has exited: how many records it produced.
	var target int64 = -1
	cmd := exec.Command(producer, "produce", pin, ms, perRun, "1", producerCPU, "1", "2")
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
		// The reader may already wait for a record that will never come: end it once all are read.
		for atomic.LoadUint64(&count) < produced {
			time.Sleep(time.Millisecond)
		}
		rd.Close()
	}()
	var rec ringbuf.Record
	var sum uint64
	last := t0
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				break
			}
			die("ReadInto", err)
		}
		sum += binary.LittleEndian.Uint64(rec.RawSample)
		n := atomic.AddUint64(&count, 1)
		if t := atomic.LoadInt64(&target); t >= 0 && int64(n) >= t {
			last = time.Now()
			break
		}
		last = time.Now()
	}
	produced, dropped := stats(coll)
	emit(map[string]interface{}{"count": count, "sum": sum, "ns": last.Sub(t0).Nanoseconds(), "produced": produced, "dropped": dropped})
}

func main() {
	usage := "drain OBJECT ROUNDS RECORDS PER_RUN CPU | live OBJECT PIN_DIR MS PER_RUN CPU PRODUCER_CPU PRODUCER"
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ringbuf-consumer-go "+usage)
		os.Exit(2)
	}
	switch {
	case os.Args[1] == "drain" && len(os.Args) == 7:
		drain(os.Args[2:])
	case os.Args[1] == "live" && len(os.Args) == 9:
		live(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: ringbuf-consumer-go "+usage)
		os.Exit(2)
	}
}
