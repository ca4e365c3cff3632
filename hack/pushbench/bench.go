package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/test/testca"
)

// settleTime lets the controller finish what a phase started (status
// patches, garbage) before its memory is read.
const settleTime = 3 * time.Second

// harness is one benchmark run's state.
type harness struct {
	o          options
	dir        string
	c          *cluster
	ctl        *controllerProc
	flags      controllerFlags
	kubeconfig string
	fleet      *fleet
	tls        *tls.Config // verifies the controller's serving certificate
	status     *statusWatcher
	res        *results
	gen        int64 // the policy's generation the sidecars enforce
}

type phase struct {
	name string
	run  func(context.Context) error
}

// bench runs every phase and returns the results.
func bench(ctx context.Context, o options) (*results, error) {
	dir, err := os.MkdirTemp("", "pushbench-")
	if err != nil {
		return nil, err
	}
	if o.Keep {
		fmt.Fprintln(os.Stderr, "pushbench: keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	h := &harness{o: o, dir: dir, status: &statusWatcher{}, res: newResults(o)}
	defer h.close()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go h.status.run(wctx, h.c)
	if err := h.startController(ctx); err != nil {
		return nil, err
	}
	phases := []phase{{"connect", h.connect}, {"memory", h.memory}, {"idle", h.idle}, {"updates", h.updates}}
	if o.Restart {
		phases = append(phases, phase{"storm", h.storm})
	}
	if o.Cold {
		phases = append(phases, phase{"cold", h.cold})
	}
	for _, p := range phases {
		h.logf("phase %s", p.name)
		if err := p.run(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	h.res.finish()
	return h.res, nil
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.o.progress, "pushbench: %s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func (h *harness) close() {
	if h.fleet != nil {
		h.fleet.stop()
	}
	if h.ctl != nil {
		h.ctl.stop()
	}
	if h.c != nil {
		if err := h.c.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pushbench: stop envtest:", err)
		}
	}
}

// setup starts the API server and creates every object, the serving
// certificate, the tokens and the sidecars (not yet connected).
func (h *harness) setup(ctx context.Context) error {
	certDir := filepath.Join(h.dir, "certs")
	tokenDir := filepath.Join(h.dir, "tokens")
	for _, d := range []string{certDir, tokenDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	ca, err := testca.WriteCertDir(certDir, serverName)
	if err != nil {
		return err
	}
	start := time.Now()
	h.logf("starting envtest")
	if h.c, err = startCluster(); err != nil {
		return err
	}
	h.res.Setup.Cluster = millis(time.Since(start))
	start = time.Now()
	if err := h.c.createBase(ctx); err != nil {
		return err
	}
	h.logf("creating %d pods and tokens", h.o.Streams)
	tokens, err := h.c.createPods(ctx, h.o.Streams, h.o.Workers, tokenDir)
	if err != nil {
		return err
	}
	if err := h.c.createPolicy(ctx); err != nil {
		return err
	}
	h.res.Setup.Objects = millis(time.Since(start))
	h.kubeconfig = filepath.Join(h.dir, "kubeconfig")
	if err := h.c.writeKubeconfig(h.kubeconfig); err != nil {
		return err
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	h.flags = controllerFlags{
		PushAddr: "127.0.0.1:" + strconv.Itoa(ports[0]), WebhookPort: ports[1],
		StatsAddr: "127.0.0.1:" + strconv.Itoa(ports[2]), CertDir: certDir,
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return errors.New("no CA certificate")
	}
	h.tls = &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	h.fleet, err = newFleet(h.flags.PushAddr, pool, tokens)
	return err
}

// startController starts the controller and waits until it serves and
// reports every pod as enforcing nothing yet: its caches hold the pods,
// the policy is reconciled and its bundle written.
func (h *harness) startController(ctx context.Context) error {
	var err error
	if h.ctl, err = startController(h.flags, h.kubeconfig, filepath.Join(h.dir, "controller.log")); err != nil {
		return err
	}
	if _, err := h.ctl.waitServing(ctx, h.tls, h.o.Timeout); err != nil {
		return err
	}
	p, err := h.c.getPolicy(ctx)
	if err != nil {
		return err
	}
	h.gen = p.Generation
	want := fmt.Sprintf("0/%d at generation %d", h.o.Streams, h.gen)
	return h.waitFor(ctx, "status "+want, func() bool {
		_, ok := h.status.firstSince(time.Time{}, want)
		return ok
	})
}

// waitFor polls cond every 5 ms until it holds, the controller exits or
// -timeout passes. progress, when given, says how far it got: logged
// every 5 s with -v, and in the timeout's error.
func (h *harness) waitFor(ctx context.Context, what string, cond func() bool, progress ...func() string) error {
	start := time.Now()
	deadline, next := start.Add(h.o.Timeout), start.Add(5*time.Second)
	say := func() string {
		var parts []string
		for _, p := range progress {
			parts = append(parts, p())
		}
		return strings.Join(parts, "; ")
	}
	for !cond() {
		if err := h.ctl.exited(); err != nil {
			return err
		}
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s: %s", h.o.Timeout, what, say())
		}
		if len(progress) > 0 && now.After(next) {
			h.logf("waiting %s for %s: %s", now.Sub(start).Round(time.Millisecond), what, say())
			next = now.Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// sample is the controller's and the API server's figures at one instant.
type sample struct {
	at        time.Time
	ctl       procStats
	apiserver time.Duration
	sidecars  time.Duration // this process's CPU: the sidecars' and the harness's
}

func (h *harness) sample(ctx context.Context, gc bool) (sample, error) {
	st, err := h.ctl.stats(ctx, gc)
	if err != nil {
		return sample{}, err
	}
	api, _ := childCPU("kube-apiserver")
	return sample{at: time.Now(), ctl: st, apiserver: api, sidecars: selfCPU()}, nil
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// settle waits settleTime, then samples the controller after a GC.
func (h *harness) settle(ctx context.Context) (sample, error) {
	if err := sleep(ctx, settleTime); err != nil {
		return sample{}, err
	}
	return h.sample(ctx, true)
}

// selfSample is this process's (the harness's and the sidecars') figures
// after a GC.
func selfSample() (procStats, error) { return selfStats(true) }
