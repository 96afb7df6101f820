// Ring buffers (bench/bpf/ringbuf_bench.bpf.c) with ringbuf.Reader.
//
//	ringbuf drain OBJECT ROUNDS RECORDS PER_RUN CPU
//	    ROUNDS times: fills the ring with RECORDS records (BPF_PROG_TEST_RUN of rb_produce,
//	    PER_RUN records per run, each run's last record waking the reader), then times reading
//	    them back. Prints {"rates":[records/s per round],"count":N,"sum":S,"dropped":D}.
//
//	ringbuf live OBJECT PIN_DIR MS PER_RUN CPU PRODUCER_CPU PRODUCER
//	    Reads while `PRODUCER produce` (bench/c/ringbuf-consumer) runs rb_produce on PRODUCER_CPU
//	    for MS milliseconds. Prints {"count","sum","ns","produced","dropped"}.
package main

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// bpf_ringbuf_submit flags.
const (
	noWakeup    = 1 // BPF_RB_NO_WAKEUP
	forceWakeup = 2 // BPF_RB_FORCE_WAKEUP
)

// rbCommand is the 14-byte test-run input of rb_produce: u32 count, u32 flags, u32 last_flags.
func rbCommand(count, flags, lastFlags uint32) []byte {
	b := make([]byte, 14)
	binary.LittleEndian.PutUint32(b[0:], count)
	binary.LittleEndian.PutUint32(b[4:], flags)
	binary.LittleEndian.PutUint32(b[8:], lastFlags)
	return b
}

func ringbufDrain(args []string) {
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
	in := rbCommand(uint32(perRun), noWakeup, forceWakeup)
	var rec ringbuf.Record
	var count, sum uint64
	rates := []float64{}
	for r := 0; r < rounds; r++ {
		fill(prog, in, records/perRun, perRun)
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

type ringLiveReader struct {
	rd  *ringbuf.Reader
	rec ringbuf.Record
}

func (l *ringLiveReader) next() (uint64, bool, error) {
	if err := l.rd.ReadInto(&l.rec); err != nil {
		return 0, false, err
	}
	return binary.LittleEndian.Uint64(l.rec.RawSample), true, nil
}

func (l *ringLiveReader) closed(err error) bool { return errors.Is(err, ringbuf.ErrClosed) }
func (l *ringLiveReader) Close() error          { return l.rd.Close() }

func ringbufLive(args []string) {
	coll := load(args[0])
	pinCPU(atoi(args[4]))
	live(coll, "rb_produce", args[1], args[6], []string{args[2], args[3], "1", args[5], "1", "2"}, func() liveReader {
		rd, err := ringbuf.NewReader(coll.Maps["ring"])
		if err != nil {
			die("ringbuf.NewReader", err)
		}
		return &ringLiveReader{rd: rd}
	})
}
