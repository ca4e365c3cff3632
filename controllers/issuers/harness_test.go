package issuers

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/netguard"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/fakeclock"
	"github.com/authgate/authgate/test/logbuf"
)

// clock is the shared manual test clock.
type clock = fakeclock.Clock

func newClock() *clock { return fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) }

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer = logbuf.Buffer

type fixture struct {
	m    *Manager
	reg  *prometheus.Registry
	clk  *clock
	logs *syncBuffer
}

// loopbackAllowed is the fetch policy of these tests: their IdPs
// (test/faultidp, httptest) listen on loopback, which the default policy
// refuses, so 127.0.0.0/8 and ::1 are allowed explicitly. Everything else
// the default refuses stays refused.
func loopbackAllowed(t *testing.T) netguard.Policy {
	t.Helper()
	p, err := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newManager(t *testing.T, mut ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), clk: newClock(), logs: &syncBuffer{}}
	opts := Options{
		FetchPolicy:  loopbackAllowed(t), // the IdPs are on loopback
		Now:          f.clk.Now,
		Logger:       slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:   f.reg,
		FetchTimeout: 2 * time.Second,
	}
	for _, m := range mut {
		m(&opts)
	}
	f.m = New(opts)
	return f
}

func fetchTimeout(d time.Duration) func(*Options) {
	return func(o *Options) { o.FetchTimeout = d }
}

// kidsOf parses a key set, checks every key is public, and returns the key
// ids in order.
func kidsOf(t *testing.T, set config.JSONWebKeySet) []string {
	t.Helper()
	kids := make([]string, 0, len(set.Keys))
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			t.Fatalf("got unparsable key %s: %v", raw, err)
		}
		if msg := config.CheckPublicSigningKey(&k); msg != "" {
			t.Fatalf("got key %s refused: %s", k.KeyID, msg)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

// flightWaiters reports how many callers wait on the spec's refresh.
func (m *Manager) flightWaiters(s Spec) int32 {
	m.mu.Lock()
	e := m.entries[s.Key()]
	m.mu.Unlock()
	if e == nil {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.flight == nil {
		return 0
	}
	return e.flight.waiters.Load()
}

// keySetError is the spec's key set's own last error.
func (m *Manager) keySetError(s Spec) string {
	m.mu.Lock()
	e := m.entries[s.Key()]
	m.mu.Unlock()
	return e.ks.Status().LastError
}

// summary prints a state with key ids instead of key bytes.
func summary(st State) string {
	var kids []string
	for _, raw := range st.Keys.Keys {
		var k struct {
			KID string `json:"kid"`
		}
		_ = json.Unmarshal(raw, &k)
		kids = append(kids, k.KID)
	}
	return fmt.Sprintf("{kids:%v count:%d lastSuccess:%v lastError:%q pending:%v nextRefresh:%v}",
		kids, st.KeyCount, st.LastSuccess, st.LastError, st.Pending, st.NextRefresh)
}
