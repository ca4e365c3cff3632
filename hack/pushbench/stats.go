package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// procStats are a process's figures at one instant.
type procStats struct {
	// CPU is user plus system CPU time (getrusage RUSAGE_SELF).
	CPU time.Duration `json:"cpu"`
	// HeapAlloc and HeapInuse are runtime.MemStats', after a GC when the
	// snapshot asked for one.
	HeapAlloc uint64 `json:"heapAlloc"`
	HeapInuse uint64 `json:"heapInuse"`
	// RSS is VmRSS of /proc/self/status.
	RSS        int64 `json:"rss"`
	Goroutines int   `json:"goroutines"`
	// Requests counts the process's API server requests by "VERB
	// resource" (controller only); RequestTime is their total duration
	// (a watch's until its response headers) and PeakInFlight the most at
	// once.
	Requests     map[string]int64         `json:"requests,omitempty"`
	RequestTime  map[string]time.Duration `json:"requestTime,omitempty"`
	PeakInFlight map[string]int64         `json:"peakInFlight,omitempty"`
	// Metrics holds the controller's authgate_controller_push_* series,
	// "name{label=value}" → value (controller only).
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// selfStats is this process's figures; gc runs a collection first, so
// the heap is what is live.
func selfStats(gc bool) (procStats, error) {
	if gc {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := statusKiB("/proc/self/status", "VmRSS:")
	if err != nil {
		return procStats{}, err
	}
	return procStats{
		CPU:       selfCPU(),
		HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse,
		RSS: rss << 10, Goroutines: runtime.NumGoroutine(),
	}, nil
}

// selfCPU is this process's user plus system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// statusKiB reads a "Key:  123 kB" line of a /proc status file.
func statusKiB(path, key string) (int64, error) {
	v, err := statusField(path, key)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
}

// statsHandler answers GET /stats[?gc=1] with the controller process's
// procStats as JSON.
func statsHandler(counter *requestCounter, reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		st, err := selfStats(r.URL.Query().Get("gc") == "1")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		st.Requests, st.RequestTime, st.PeakInFlight = counter.snapshot()
		st.Metrics = pushMetrics(reg)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	prof := &profiler{}
	mux.HandleFunc("/profile/start", prof.start)
	mux.HandleFunc("/profile/stop", prof.stop)
	return mux
}

// profiler writes the controller's CPU profile between /profile/start
// (?path= the file) and /profile/stop, for -cpuprofile.
type profiler struct {
	mu sync.Mutex
	f  *os.File
}

func (p *profiler) start(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f != nil {
		http.Error(w, "already profiling", http.StatusConflict)
		return
	}
	f, err := os.Create(r.URL.Query().Get("path"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.f = f
}

func (p *profiler) stop(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		http.Error(w, "not profiling", http.StatusConflict)
		return
	}
	pprof.StopCPUProfile()
	if err := p.f.Close(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
	p.f = nil
}

// pushMetrics flattens the authgate_controller_push_* counters and gauges
// of reg.
func pushMetrics(reg prometheus.Gatherer) map[string]float64 {
	out := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "authgate_controller_push_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// requestCounter counts a client's API server requests by verb and
// resource, with their durations and the most in flight at once: what
// the controller costs the API server.
type requestCounter struct {
	mu       sync.Mutex
	counts   map[string]int64
	time     map[string]time.Duration
	inFlight map[string]int64
	peak     map[string]int64
}

func newRequestCounter() *requestCounter {
	return &requestCounter{counts: map[string]int64{}, time: map[string]time.Duration{}, inFlight: map[string]int64{}, peak: map[string]int64{}}
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		key := requestKey(req)
		c.mu.Lock()
		c.counts[key]++
		c.inFlight[key]++
		c.peak[key] = max(c.peak[key], c.inFlight[key])
		c.mu.Unlock()
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		c.mu.Lock()
		c.inFlight[key]--
		c.time[key] += time.Since(start)
		c.mu.Unlock()
		return resp, err
	})
}

func (c *requestCounter) snapshot() (map[string]int64, map[string]time.Duration, map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts), maps.Clone(c.time), maps.Clone(c.peak)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// requestKey is "VERB resource[/subresource]" of an API request, with
// LIST and WATCH told apart from GET: /api/v1/namespaces/x/pods/y/status
// is "PATCH pods/status", /apis/authentication.k8s.io/v1/tokenreviews
// "POST tokenreviews".
func requestKey(req *http.Request) string {
	segs := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	switch {
	case len(segs) > 2 && segs[0] == "api":
		segs = segs[2:]
	case len(segs) > 3 && segs[0] == "apis":
		segs = segs[3:]
	default:
		return req.Method + " " + req.URL.Path
	}
	if len(segs) > 2 && segs[0] == "namespaces" {
		segs = segs[2:]
	}
	resource, named := segs[0], len(segs) > 1
	if len(segs) > 2 {
		resource += "/" + segs[2]
	}
	verb := req.Method
	switch {
	case req.Method == http.MethodGet && req.URL.Query().Get("watch") == "true":
		verb = "WATCH"
	case req.Method == http.MethodGet && !named:
		verb = "LIST"
	}
	return verb + " " + resource
}

// sumRequests adds up the counts whose key has the suffix (all when "").
func sumRequests(counts map[string]int64, suffix string) int64 {
	var n int64
	for k, v := range counts {
		if strings.HasSuffix(k, suffix) {
			n += v
		}
	}
	return n
}
