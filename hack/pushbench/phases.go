package main

import (
	"context"
	"path/filepath"
	"strconv"
	"time"

	"github.com/authgate/authgate/controllers/push"
)

// Series of the fleet's connect counter.
const (
	connectsTotal = "authgate_proxy_push_connects_total"
	tokenReviews  = "POST tokenreviews"
	secretGets    = "GET secrets"
)

// connect measures the controller at 0 streams, then starts every sidecar
// at once and waits until each acknowledged the current generation and
// the status says so.
func (h *harness) connect(ctx context.Context) error {
	base, err := h.settle(ctx)
	if err != nil {
		return err
	}
	h.res.Memory.base = base.ctl
	if h.res.Memory.selfBase, err = selfSample(); err != nil {
		return err
	}
	s0, err := h.sample(ctx, false)
	if err != nil {
		return err
	}
	v := strconv.FormatInt(h.gen, 10)
	start := time.Now()
	h.fleet.start(ctx)
	if err := h.waitFor(ctx, "every sidecar to acknowledge generation "+v, func() bool {
		return h.fleet.tracker.ackedVersion(v) == h.o.Streams
	}, func() string { return h.fleet.progress(start, start) }); err != nil {
		return err
	}
	status, err := h.waitStatus(ctx, start, h.gen)
	if err != nil {
		return err
	}
	s1, err := h.sample(ctx, false)
	if err != nil {
		return err
	}
	_, acked := h.fleet.tracker.since(v, start)
	h.res.Connect = phaseResult{
		Acks: summarize(acked), Status: millis(status), cost: costBetween(s0, s1),
		ConnectErrors: h.fleet.counter(connectsTotal, "error"), Unauthorized: h.fleet.counter(connectsTotal, "unauthorized"),
	}
	return nil
}

// waitStatus waits until the status reads every pod enforcing gen, and
// returns how long after start it first did.
func (h *harness) waitStatus(ctx context.Context, start time.Time, gen int64) (time.Duration, error) {
	want := enforcement(h.o.Streams, gen)
	var at time.Time
	err := h.waitFor(ctx, "status "+want, func() bool {
		t, ok := h.status.firstSince(start, want)
		at = t
		return ok
	})
	return at.Sub(start), err
}

// memory reads the controller (and this process) with every stream open
// and idle, after a GC.
func (h *harness) memory(ctx context.Context) error {
	loaded, err := h.settle(ctx)
	if err != nil {
		return err
	}
	h.res.Memory.loaded = loaded.ctl
	h.res.Memory.selfLoaded, err = selfSample()
	return err
}

// idle measures the controller's CPU over -idle with every stream open and
// nothing changing.
func (h *harness) idle(ctx context.Context) error {
	a, err := h.sample(ctx, false)
	if err != nil {
		return err
	}
	if err := sleep(ctx, h.o.Idle); err != nil {
		return err
	}
	b, err := h.sample(ctx, false)
	if err != nil {
		return err
	}
	h.res.Idle = costBetween(a, b)
	return nil
}

// updates changes the policy -updates times, one after the other, with
// the controller's CPU profiled when -cpuprofile is given.
func (h *harness) updates(ctx context.Context) error {
	if h.o.CPUProfile != "" {
		path, err := filepath.Abs(h.o.CPUProfile)
		if err != nil {
			return err
		}
		if err := h.ctl.profile(ctx, "start", path); err != nil {
			return err
		}
		defer func() {
			if err := h.ctl.profile(context.WithoutCancel(ctx), "stop", ""); err != nil {
				h.logf("%v", err)
			}
		}()
	}
	for k := 1; k <= h.o.Updates; k++ {
		row, err := h.update(ctx, k)
		if err != nil {
			return err
		}
		h.res.addUpdate(row)
		h.logf("update %d: generation %d, last ack %s, status %s", k, row.Generation, row.Acks.Max, row.Status)
		if err := sleep(ctx, h.o.Gap); err != nil {
			return err
		}
	}
	return nil
}

// update changes the policy's route (step) and waits for every sidecar's
// acknowledgement of the new generation and for the status.
func (h *harness) update(ctx context.Context, step int) (updateResult, error) {
	s0, err := h.sample(ctx, false)
	if err != nil {
		return updateResult{}, err
	}
	at, gen, err := h.c.updatePolicy(ctx, step)
	if err != nil {
		return updateResult{}, err
	}
	v := strconv.FormatInt(gen, 10)
	if err := h.waitFor(ctx, "every sidecar to acknowledge generation "+v, func() bool {
		return h.fleet.tracker.ackedVersion(v) == h.o.Streams
	}); err != nil {
		return updateResult{}, err
	}
	status, err := h.waitStatus(ctx, at, gen)
	if err != nil {
		return updateResult{}, err
	}
	s1, err := h.sample(ctx, false)
	if err != nil {
		return updateResult{}, err
	}
	h.gen = gen
	applied, acked := h.fleet.tracker.since(v, at)
	return updateResult{
		Generation: gen, FirstApplied: millis(applied[0]), AllApplied: millis(applied[len(applied)-1]),
		Acks: summarize(acked), Status: millis(status), cost: costBetween(s0, s1), acks: acked,
	}, nil
}

// storm stops the controller (SIGTERM) and starts a new one on the same
// port, and measures until every sidecar is connected to it again and has
// acknowledged; then one more update, to the new controller.
func (h *harness) storm(ctx context.Context) error {
	s0, err := h.sample(ctx, false)
	if err != nil {
		return err
	}
	h.res.Storm.OldControllerCPU = millis(s0.ctl.CPU)
	errors0, ok0 := h.fleet.counter(connectsTotal, "error"), h.fleet.counter(connectsTotal, "ok")
	term := time.Now()
	h.ctl.stop()
	exit := time.Now()
	if h.ctl, err = startController(h.flags, h.kubeconfig, filepath.Join(h.dir, "controller.log")); err != nil {
		return err
	}
	listen, err := h.ctl.waitServing(ctx, h.tls, h.o.Timeout)
	if err != nil {
		return err
	}
	// An acknowledgement accepted after the old controller exited was
	// accepted by the new one, possibly before the probe saw it serve.
	var connected time.Time
	if err := h.waitFor(ctx, "every sidecar back on the new controller", func() bool {
		if connected.IsZero() && h.fleet.connected() == h.o.Streams {
			connected = time.Now()
		}
		n, _ := h.fleet.tracker.ackedSince(exit)
		return n == h.o.Streams
	}, func() string { return h.fleet.progress(term, exit) }); err != nil {
		return err
	}
	_, back := h.fleet.tracker.ackedSince(exit)
	s1, err := h.sample(ctx, false)
	if err != nil {
		return err
	}
	want := enforcement(h.o.Streams, h.gen)
	if err := h.waitFor(ctx, "status "+want+" after the restart", func() bool {
		t, ok := h.status.firstSince(time.Now().Add(-statusInterval), want)
		return ok && !t.IsZero()
	}); err != nil {
		return err
	}
	low, statusBack, changed := h.status.lowestSince(term, want)
	if !changed {
		low = int32(h.o.Streams) // it read N/N throughout
	}
	h.res.Storm.fill(stormTimes{term: term, exit: exit, listen: listen, connected: connected, back: back, statusBack: statusBack},
		h.fleet.log, low, s0, s1, h.fleet.counter(connectsTotal, "error")-errors0, h.fleet.counter(connectsTotal, "ok")-ok0)
	row, err := h.update(ctx, h.o.Updates+1)
	if err != nil {
		return err
	}
	h.res.AfterRestart = &row
	return nil
}

// cold waits until the push server's TokenReview cache has expired every
// entry (push.DefaultReviewTTL) and updates the policy once more: each
// acknowledgement then needs a TokenReview again, as it does in a cluster
// whenever policy changes are more than a minute apart.
func (h *harness) cold(ctx context.Context) error {
	wait := push.DefaultReviewTTL + 5*time.Second
	h.logf("waiting %s for the TokenReview cache to expire", wait)
	if err := sleep(ctx, wait); err != nil {
		return err
	}
	row, err := h.update(ctx, h.o.Updates+2)
	if err != nil {
		return err
	}
	h.res.Cold = &row
	return nil
}
