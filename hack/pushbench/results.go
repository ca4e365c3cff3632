package main

import (
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// millis is a duration written in milliseconds (JSON: a number of ms).
type millis time.Duration

func (m millis) ms() float64 { return float64(m) / float64(time.Millisecond) }

func (m millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, m.ms(), 'f', 3, 64), nil
}

func (m millis) String() string {
	if time.Duration(m) >= 10*time.Second {
		return strconv.FormatFloat(time.Duration(m).Seconds(), 'f', 2, 64) + " s"
	}
	return strconv.FormatFloat(m.ms(), 'f', 1, 64) + " ms"
}

// ackSummary is a distribution of times to acknowledgement.
type ackSummary struct {
	N   int    `json:"n"`
	P50 millis `json:"p50"`
	P90 millis `json:"p90"`
	P99 millis `json:"p99"`
	Max millis `json:"max"`
}

// summarize sorted durations.
func summarize(ds []time.Duration) ackSummary {
	return ackSummary{
		N: len(ds), P50: millis(quantile(ds, 0.5)), P90: millis(quantile(ds, 0.9)),
		P99: millis(quantile(ds, 0.99)), Max: millis(quantile(ds, 1)),
	}
}

// cost is what the controller and the API server spent between two
// samples.
type cost struct {
	Wall          millis `json:"wall"`
	ControllerCPU millis `json:"controllerCPU"`
	APIServerCPU  millis `json:"apiserverCPU"`
	// SidecarsCPU is this process's: the simulated sidecars' and the
	// harness's (its status polling included).
	SidecarsCPU  millis `json:"sidecarsCPU"`
	TokenReviews int64  `json:"tokenReviews"`
	// ReviewMean is a TokenReview's mean duration as the controller saw
	// it (its wait for one of the reviewer's slots excluded).
	ReviewMean millis `json:"tokenReviewMean"`
	// BundleReads are the controller's GETs of Secrets (the push server
	// reads the bundle Secret for every stream it opens).
	BundleReads int64 `json:"secretGets"`
	Requests    int64 `json:"apiRequests"`
}

func costBetween(a, b sample) cost {
	c := cost{
		Wall: millis(b.at.Sub(a.at)), ControllerCPU: millis(b.ctl.CPU - a.ctl.CPU), APIServerCPU: millis(b.apiserver - a.apiserver),
		SidecarsCPU:  millis(b.sidecars - a.sidecars),
		TokenReviews: b.ctl.Requests[tokenReviews] - a.ctl.Requests[tokenReviews],
		BundleReads:  b.ctl.Requests[secretGets] - a.ctl.Requests[secretGets],
		Requests:     sumRequests(b.ctl.Requests, "") - sumRequests(a.ctl.Requests, ""),
	}
	if c.TokenReviews > 0 {
		c.ReviewMean = millis((b.ctl.RequestTime[tokenReviews] - a.ctl.RequestTime[tokenReviews]) / time.Duration(c.TokenReviews))
	}
	return c
}

// phaseResult is the initial connect of every sidecar.
type phaseResult struct {
	// Acks are the times from the start of the sidecars to each one's
	// first acknowledgement.
	Acks ackSummary `json:"acks"`
	// Status is the time to status.coverage.enforcement "N/N".
	Status millis `json:"status"`
	cost
	ConnectErrors float64 `json:"connectErrors"`
	Unauthorized  float64 `json:"unauthorized"`
}

// updateResult is one AuthPolicy update, times from the Update call.
type updateResult struct {
	Generation int64 `json:"generation"`
	// FirstApplied and AllApplied: the first and the last sidecar to
	// receive and activate the new bundle.
	FirstApplied millis     `json:"firstApplied"`
	AllApplied   millis     `json:"allApplied"`
	Acks         ackSummary `json:"acks"`
	Status       millis     `json:"status"`
	cost
	acks []time.Duration
}

// memResult compares the controller at 0 and at N idle streams.
type memResult struct {
	base, loaded, selfBase, selfLoaded procStats

	BaseHeap       uint64  `json:"baseHeapBytes"`
	LoadedHeap     uint64  `json:"loadedHeapBytes"`
	BaseRSS        int64   `json:"baseRSSBytes"`
	LoadedRSS      int64   `json:"loadedRSSBytes"`
	BaseGoroutines int     `json:"baseGoroutines"`
	Goroutines     int     `json:"loadedGoroutines"`
	HeapPerStream  float64 `json:"heapBytesPerStream"`
	RSSPerStream   float64 `json:"rssBytesPerStream"`
	GoroutinesPer  float64 `json:"goroutinesPerStream"`
	// SidecarHeapPerStream is this process's (the simulated sidecars')
	// heap per client, for comparison.
	SidecarHeapPerStream float64 `json:"sidecarHeapBytesPerStream"`
}

// stormResult is the controller restart, times from the SIGTERM.
type stormResult struct {
	// StreamsEnded sidecars logged their stream's end, the last at
	// AllEnded; Unavailable connect attempts failed (between FirstFailed
	// and LastFailed); the first stream to the new controller came at
	// FirstConnected.
	StreamsEnded   int    `json:"streamsEnded"`
	AllEnded       millis `json:"allEnded"`
	Unavailable    int    `json:"failedAttempts"`
	FirstFailed    millis `json:"firstFailed"`
	LastFailed     millis `json:"lastFailed"`
	FirstConnected millis `json:"firstConnected"`
	Exited         millis `json:"exited"`
	Listening      millis `json:"listening"`
	Connected      millis `json:"allConnected"`
	AllAcked       millis `json:"allAcked"`
	// StatusLowest is the fewest pods the status counted as enforcing
	// after the restart; StatusBack when it read N/N again after that.
	StatusLowest int32  `json:"statusLowest"`
	StatusBack   millis `json:"statusBack"`
	// The new controller's cost from its start to AllAcked (Wall: from
	// the SIGTERM), and the API server's CPU from the SIGTERM;
	// TokenReviewMetric is what the new controller's
	// authgate_controller_push_tokenreviews_total says of its reviews,
	// PeakReviews the most it had in flight, ByRequest its API requests.
	cost
	TokenReviewMetric float64          `json:"tokenReviewMetric"`
	PeakReviews       int64            `json:"peakTokenReviewsInFlight"`
	ByRequest         map[string]int64 `json:"apiRequestsByKind"`
	ConnectErrors     float64          `json:"connectErrors"`
	Reconnects        float64          `json:"reconnects"`
	OldControllerCPU  millis           `json:"oldControllerLifetimeCPU"`
}

type stormTimes struct{ term, exit, listen, connected, back, statusBack time.Time }

func (s *stormResult) fill(t stormTimes, log *clientLog, low int32, old, cur sample, connectErrors, reconnects float64) {
	since := func(at time.Time) millis {
		if at.IsZero() {
			return 0
		}
		return millis(at.Sub(t.term))
	}
	var ended, failed, failedLast, connected time.Time
	s.StreamsEnded, _, ended = log.since(t.term, kindEnded)
	s.Unavailable, failed, failedLast = log.since(t.term, kindUnavailable)
	_, connected, _ = log.since(t.term, kindConnected)
	s.AllEnded, s.FirstFailed, s.LastFailed, s.FirstConnected = since(ended), since(failed), since(failedLast), since(connected)
	s.Exited, s.Listening, s.Connected, s.AllAcked, s.StatusBack =
		since(t.exit), since(t.listen), since(t.connected), since(t.back), since(t.statusBack)
	s.StatusLowest = low
	s.cost = costBetween(sample{at: t.term, apiserver: old.apiserver, sidecars: old.sidecars}, cur)
	s.PeakReviews, s.ByRequest = cur.ctl.PeakInFlight[tokenReviews], cur.ctl.Requests
	for k, v := range cur.ctl.Metrics {
		if strings.HasPrefix(k, "authgate_controller_push_tokenreviews_total{") {
			s.TokenReviewMetric += v
		}
	}
	s.ConnectErrors, s.Reconnects = connectErrors, reconnects
}

type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// results are a run's figures.
type results struct {
	Date    string `json:"date"`
	CPUs    int    `json:"cpus"`
	Go      string `json:"go"`
	Streams int    `json:"streams"`
	Setup   struct {
		Cluster millis `json:"cluster"`
		Objects millis `json:"objects"`
	} `json:"setup"`
	Connect phaseResult    `json:"connect"`
	Memory  memResult      `json:"memory"`
	Idle    cost           `json:"idle"`
	Updates []updateResult `json:"updates"`
	// AllAcks pools every sidecar's time to acknowledgement of every
	// update; LastAck and Status are over the updates.
	AllAcks      ackSummary    `json:"allAcks"`
	LastAck      ackSummary    `json:"lastAck"`
	Status       ackSummary    `json:"status"`
	CPUPerUpdate millis        `json:"controllerCPUPerUpdate"`
	Storm        *stormResult  `json:"storm,omitempty"`
	AfterRestart *updateResult `json:"afterRestart,omitempty"`
	// Cold is an update made once the TokenReview cache expired.
	Cold    *updateResult `json:"coldCache,omitempty"`
	Figures []figure      `json:"figures"`

	all []time.Duration
}

func newResults(o options) *results {
	r := &results{Date: time.Now().UTC().Format(time.DateOnly), CPUs: runtime.NumCPU(), Go: runtime.Version(), Streams: o.Streams}
	if o.Restart {
		r.Storm = &stormResult{}
	}
	return r
}

func (r *results) addUpdate(u updateResult) {
	r.Updates = append(r.Updates, u)
	r.all = append(r.all, u.acks...)
}

// finish computes the pooled figures and the per-stream memory.
func (r *results) finish() {
	sort.Slice(r.all, func(i, j int) bool { return r.all[i] < r.all[j] })
	r.AllAcks = summarize(r.all)
	var last, status []time.Duration
	var cpu millis
	for _, u := range r.Updates {
		last = append(last, time.Duration(u.Acks.Max))
		status = append(status, time.Duration(u.Status))
		cpu += u.ControllerCPU
	}
	sort.Slice(last, func(i, j int) bool { return last[i] < last[j] })
	sort.Slice(status, func(i, j int) bool { return status[i] < status[j] })
	r.LastAck, r.Status = summarize(last), summarize(status)
	if len(r.Updates) > 0 {
		r.CPUPerUpdate = cpu / millis(len(r.Updates))
	}
	m := &r.Memory
	n := float64(r.Streams)
	m.BaseHeap, m.LoadedHeap = m.base.HeapAlloc, m.loaded.HeapAlloc
	m.BaseRSS, m.LoadedRSS = m.base.RSS, m.loaded.RSS
	m.BaseGoroutines, m.Goroutines = m.base.Goroutines, m.loaded.Goroutines
	m.HeapPerStream = (float64(m.loaded.HeapAlloc) - float64(m.base.HeapAlloc)) / n
	m.RSSPerStream = float64(m.loaded.RSS-m.base.RSS) / n
	m.GoroutinesPer = float64(m.loaded.Goroutines-m.base.Goroutines) / n
	m.SidecarHeapPerStream = (float64(m.selfLoaded.HeapAlloc) - float64(m.selfBase.HeapAlloc)) / n
	r.Figures = r.figures()
}
