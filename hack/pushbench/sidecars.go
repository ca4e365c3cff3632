package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/push"
)

// fleet is the simulated sidecars: N proxy/push Clients, each with its own
// token file, transport (one HTTP/2 connection) and fake Applier.
type fleet struct {
	clients    []*push.Client
	transports []*http.Transport
	tracker    *tracker
	log        *clientLog
	reg        *prometheus.Registry
	wg         sync.WaitGroup
	cancel     context.CancelFunc
}

// newFleet builds one Client per token file, connecting to
// https://<addr> and verifying the server's certificate for serverName
// against pool. Nothing connects until start.
func newFleet(addr string, pool *x509.CertPool, tokenFiles []string) (*fleet, error) {
	f := &fleet{tracker: newTracker(len(tokenFiles)), log: &clientLog{}, reg: prometheus.NewRegistry()}
	logger := slog.New(f.log)
	// One set of counters for all the clients: connects and acks by
	// result add up over the fleet.
	metrics := push.NewMetrics(f.reg)
	parsed := &parseCache{entries: map[string]*parseEntry{}}
	for i, tokenFile := range tokenFiles {
		tr := sidecarTransport(pool)
		c, err := push.New(push.Options{
			URL:       "https://" + addr,
			TokenFile: tokenFile,
			Applier:   &fakeApplier{idx: i, parsed: parsed, tracker: f.tracker},
			Metrics:   metrics,
			Logger:    logger,
			Transport: &ackTimer{rt: tr, idx: i, tracker: f.tracker},
		})
		if err != nil {
			return nil, err
		}
		f.clients = append(f.clients, c)
		f.transports = append(f.transports, tr)
	}
	return f, nil
}

// start runs every client until stop.
func (f *fleet) start(ctx context.Context) {
	ctx, f.cancel = context.WithCancel(ctx)
	for _, c := range f.clients {
		f.wg.Go(func() { c.Run(ctx) })
	}
}

func (f *fleet) stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	for _, t := range f.transports {
		t.CloseIdleConnections()
	}
}

// connected counts the clients holding a stream now.
func (f *fleet) connected() int {
	n := 0
	for _, c := range f.clients {
		if c.Connected() {
			n++
		}
	}
	return n
}

// progress says how many clients are connected, how many acknowledged
// after acked, and what the clients logged and counted after start.
func (f *fleet) progress(start, acked time.Time) string {
	n, _ := f.tracker.ackedSince(acked)
	ended, _, _ := f.log.since(start, kindEnded)
	failed, _, last := f.log.since(start, kindUnavailable)
	up, _, _ := f.log.since(start, kindConnected)
	return fmt.Sprintf("%d connected, %d acknowledged; since the start %d streams ended, %d opened, %d attempts failed (the last at %s); connects ok %v, error %v, unauthorized %v; all runs' failures %v",
		f.connected(), n, ended, up, failed, last.Format("15:04:05.000"),
		f.counter(connectsTotal, "ok"), f.counter(connectsTotal, "error"), f.counter(connectsTotal, "unauthorized"), f.log.reasonCounts())
}

// counter is the fleet's value of a proxy push counter with one label
// value, e.g. ("authgate_proxy_push_connects_total", "error").
func (f *fleet) counter(name, label string) float64 {
	families, err := f.reg.Gather()
	if err != nil {
		return 0
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// sidecarTransport is proxy/push's own transport (transport.go,
// newTransport) rebuilt here with the same settings, so that a wrapper
// can time the acknowledgements: TLS 1.2+ verified against the CA for
// serverName, HTTP/2 with PING liveness, no proxy, no compression. Unlike
// the client's own, one transport serves every session of a client; a
// session's connection dies with the server either way.
func sidecarTransport(pool *x509.CertPool) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:            dialer.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: serverName},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  15 * time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
		HTTP2:                  &http.HTTP2Config{SendPingTimeout: push.DefaultPingTimeout, PingTimeout: push.DefaultPingTimeout},
	}
}

// ackTimer times each acknowledgement the server accepted: the 204
// arrives after the server recorded the Ack (Acks.Record comes before
// the status is written), so its arrival bounds the recording from above
// by one loopback trip.
type ackTimer struct {
	rt      http.RoundTripper
	idx     int
	tracker *tracker
}

func (a *ackTimer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.URL.Path != pushapi.AckPath || req.GetBody == nil {
		return a.rt.RoundTrip(req)
	}
	var ack pushapi.Ack
	if body, err := req.GetBody(); err == nil {
		_ = json.NewDecoder(io.LimitReader(body, pushapi.MaxAckBytes)).Decode(&ack)
		body.Close()
	}
	resp, err := a.rt.RoundTrip(req)
	if err == nil && resp.StatusCode/100 == 2 {
		a.tracker.acked(a.idx, ack.Policies[policyKey], time.Now())
	}
	return resp, err
}

// fakeApplier is a simulated sidecar's configuration: it activates every
// bundle whose revision is above the active one, and reports the
// benchmark policy's version from the parsed bundle.
type fakeApplier struct {
	idx     int
	parsed  *parseCache
	tracker *tracker

	mu  sync.Mutex
	ack pushapi.Ack
}

func (a *fakeApplier) Apply(_ context.Context, data []byte) (push.Outcome, error) {
	rev, hash := config.HeadRevision(data), config.Hash(data)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case hash == a.ack.Hash:
		return push.Unchanged, nil
	case a.ack.Hash != "" && rev <= a.ack.Revision:
		return push.Stale, nil
	}
	policies, err := a.parsed.policies(hash, data)
	if err != nil {
		return push.Rejected, err
	}
	a.ack = pushapi.Ack{Revision: rev, Hash: hash, Policies: policies}
	a.tracker.applied(a.idx, policies[policyKey], time.Now())
	return push.Applied, nil
}

func (a *fakeApplier) Enforced() (pushapi.Ack, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ack := a.ack
	ack.Policies = maps.Clone(ack.Policies)
	return ack, ack.Hash != ""
}

// parseCache parses each bundle once for the whole fleet (config.Parse,
// as a reload does before it builds) and keeps the versions of the
// policies selecting the sidecars' pods. Every simulated pod has the same
// labels, so one result per bundle serves them all; a real sidecar parses
// its own copy, on its own CPU, which is not the controller's.
type parseCache struct {
	mu      sync.Mutex
	entries map[string]*parseEntry
}

type parseEntry struct {
	once     sync.Once
	policies map[string]string
	err      error
}

func (c *parseCache) policies(hash string, data []byte) (map[string]string, error) {
	c.mu.Lock()
	e := c.entries[hash]
	if e == nil {
		e = &parseEntry{}
		c.entries[hash] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		cfg, err := config.Parse(data)
		if err != nil {
			e.err = err
			return
		}
		e.policies = map[string]string{}
		for _, p := range cfg.Policies {
			if p.Selector.Matches(podLabels) {
				e.policies[p.Name] = p.Version
			}
		}
	})
	return maps.Clone(e.policies), e.err
}
