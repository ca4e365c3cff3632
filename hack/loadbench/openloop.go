package main

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// spinWindow is how long before a scheduled send the pacer stops sleeping
// and spins: nanosleep wakes ~40 µs late on these VMs and Go's own timers
// have 1 ms granularity on Linux, both too coarse for microsecond latencies.
const spinWindow = 100 * time.Microsecond

// openLoopResult is one fixed-rate run.
type openLoopResult struct {
	// Latency from each request's scheduled send time to its last byte, so
	// a stall delays the requests queued behind it (no coordinated omission).
	Latency summary
	// PacerLate is how late the pacer actually sent, a measure of the
	// generator's own noise.
	PacerLate summary
	Sent      int
	Errors    int
	Rate      float64 // achieved completions per second
}

// slot is one keep-alive connection and the request in flight on it.
type slot struct {
	c     *conn
	sched atomic.Int64 // scheduled send time, ns since start
	lat   []int64
	errs  int
}

// runOpenLoop sends req at a fixed rate for d over up to conns keep-alive
// connections. Requests are scheduled on a fixed timeline; latency is
// measured from the scheduled time. When every connection is busy the pacer
// waits for one, and the wait counts against the requests.
func runOpenLoop(req request, rate int, d time.Duration, conns int) (openLoopResult, error) {
	if rate <= 0 {
		return openLoopResult{}, errors.New("rate must be positive")
	}
	total := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	free := make(chan *slot, conns)
	slots := make([]*slot, 0, conns)
	var wg sync.WaitGroup
	var stopping atomic.Bool
	var lost atomic.Int32
	for range conns {
		c, err := dial(req.addr)
		if err != nil {
			closeSlots(slots)
			return openLoopResult{}, err
		}
		slots = append(slots, &slot{c: c, lat: make([]int64, 0, total/conns+total/4+16)})
	}
	start := time.Now() // after dialing, so no request waits for a connection setup
	for _, s := range slots {
		wg.Go(func() { s.read(start, free, &stopping, &lost) })
		free <- s
	}

	late := make([]int64, 0, total)
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		setTimerSlack(1000)
		defer setTimerSlack(50000)
		for i := range total {
			at := time.Duration(i) * interval
			sleepUntil(start, at)
			var s *slot
			select {
			case s = <-free:
			case <-time.After(10 * time.Second):
				return // every connection is stuck; reported as unsent
			}
			now := time.Since(start)
			late = append(late, int64(now-at))
			s.sched.Store(int64(at))
			if _, err := s.c.c.Write(req.raw); err != nil {
				continue // its reader fails on the broken connection and counts it
			}
		}
	}()
	elapsed := drain(free, len(slots), &lost, start)
	stopping.Store(true)
	closeSlots(slots)
	wg.Wait()

	res := openLoopResult{Sent: len(late), PacerLate: summarize(late)}
	var all []int64
	for _, s := range slots {
		all = append(all, s.lat...)
		res.Errors += s.errs
	}
	res.Latency = summarize(all)
	res.Rate = float64(len(all)) / elapsed.Seconds()
	if len(all) == 0 {
		return res, fmt.Errorf("no successful responses from %s (%d errors)", req.addr, res.Errors)
	}
	return res, nil
}

// read records the latency of each response on s and hands s back to the
// pacer. It blocks in the netpoller between requests.
func (s *slot) read(start time.Time, free chan<- *slot, stopping *atomic.Bool, lost *atomic.Int32) {
	for {
		status, err := s.c.readResponse()
		if err != nil {
			if !stopping.Load() {
				s.errs++
				lost.Add(1)
			}
			return
		}
		if status == 200 {
			s.lat = append(s.lat, int64(time.Since(start))-s.sched.Load())
		} else {
			s.errs++
		}
		free <- s
	}
}

// drain waits (bounded) until every live connection is idle again and
// returns the time since start.
func drain(free <-chan *slot, n int, lost *atomic.Int32, start time.Time) time.Duration {
	deadline := time.Now().Add(5 * time.Second)
	for got := 0; got < n-int(lost.Load()) && time.Now().Before(deadline); {
		select {
		case <-free:
			got++
		case <-time.After(10 * time.Millisecond):
		}
	}
	return time.Since(start)
}

func closeSlots(slots []*slot) {
	for _, s := range slots {
		s.c.close()
	}
}

// sleepUntil sleeps with nanosleep (on this locked thread) until spinWindow
// before at, then spins.
func sleepUntil(start time.Time, at time.Duration) {
	if d := at - time.Since(start) - spinWindow; d > 0 {
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
	for time.Since(start) < at {
	}
}

// setTimerSlack sets this thread's timer slack in ns (PR_SET_TIMERSLACK), so
// nanosleep wakes as close to its deadline as the kernel allows.
func setTimerSlack(ns uintptr) {
	const prSetTimerSlack = 29
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, ns, 0)
}
