package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// figures are the run's headline numbers, as `figure` lines.
func (r *results) figures() []figure {
	n := float64(r.Streams)
	f := []figure{
		{"push_update_to_all_acks_p50", r.AllAcks.P50.ms(), "ms"},
		{"push_update_to_all_acks_p90", r.AllAcks.P90.ms(), "ms"},
		{"push_update_to_all_acks_p99", r.AllAcks.P99.ms(), "ms"},
		{"push_update_to_all_acks_max", r.AllAcks.Max.ms(), "ms"},
		{"push_update_to_last_ack_median", r.LastAck.P50.ms(), "ms"},
		{"push_update_to_last_ack_max", r.LastAck.Max.ms(), "ms"},
		{"push_update_to_status_enforced_median", r.Status.P50.ms(), "ms"},
		{"push_update_to_status_enforced_max", r.Status.Max.ms(), "ms"},
		{"push_controller_cpu_per_update", r.CPUPerUpdate.ms(), "ms"},
		{"push_connect_all_acked", r.Connect.Acks.Max.ms(), "ms"},
		{"push_connect_tokenreviews", float64(r.Connect.TokenReviews), "reviews"},
		{"push_controller_cpu_per_stream_connect", r.Connect.ControllerCPU.ms() / n, "ms"},
		{"push_controller_heap_per_stream", r.Memory.HeapPerStream / 1024, "KiB"},
		{"push_controller_rss_per_stream", r.Memory.RSSPerStream / 1024, "KiB"},
		{"push_controller_goroutines_per_stream", r.Memory.GoroutinesPer, "goroutines"},
	}
	if w := time.Duration(r.Idle.Wall).Seconds(); w > 0 {
		f = append(f, figure{"push_controller_idle_cpu_per_stream", r.Idle.ControllerCPU.ms() * 1000 / w / n, "µs/s"})
	}
	if s := r.Storm; s != nil {
		f = append(f,
			figure{"push_restart_controller_listening", s.Listening.ms(), "ms"},
			figure{"push_restart_all_connected", s.Connected.ms(), "ms"},
			figure{"push_restart_all_acked", s.AllAcked.ms(), "ms"},
			figure{"push_restart_tokenreviews", float64(s.TokenReviews), "reviews"},
			figure{"push_restart_apiserver_cpu", s.APIServerCPU.ms(), "ms"},
		)
	}
	if u := r.Cold; u != nil {
		f = append(f,
			figure{"push_update_cold_cache_acks_p99", u.Acks.P99.ms(), "ms"},
			figure{"push_update_cold_cache_last_ack", u.Acks.Max.ms(), "ms"},
			figure{"push_update_cold_cache_tokenreviews", float64(u.TokenReviews), "reviews"},
		)
	}
	for i := range f {
		f[i].Value = round3(f[i].Value)
	}
	return f
}

func round3(v float64) float64 {
	x, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 3, 64), 64)
	return x
}

func (r *results) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints the phases, the updates and the figure lines.
func (r *results) writeTable(out io.Writer) {
	fmt.Fprintf(out, "pushbench %s: %d streams, %d CPUs, %s; setup: envtest %s, pods and tokens %s\n\n",
		r.Date, r.Streams, r.CPUs, r.Go, r.Setup.Cluster, r.Setup.Objects)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "update\tgen\tfirst recv\tall recv\tack p50\tack p90\tack p99\tlast ack\tstatus N/N\tctl CPU\tapiserver CPU\tsidecars CPU\treviews\t")
	row := func(name string, u updateResult) {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", name, u.Generation, u.FirstApplied, u.AllApplied,
			u.Acks.P50, u.Acks.P90, u.Acks.P99, u.Acks.Max, u.Status, u.ControllerCPU, u.APIServerCPU, u.SidecarsCPU, u.TokenReviews)
	}
	for i, u := range r.Updates {
		row(strconv.Itoa(i+1), u)
	}
	if r.AfterRestart != nil {
		row("after restart", *r.AfterRestart)
	}
	if r.Cold != nil {
		row("cache expired", *r.Cold)
	}
	fmt.Fprintf(w, "all %d acks\t\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t\t\t\t\n", r.AllAcks.N, r.AllAcks.P50, r.AllAcks.P90, r.AllAcks.P99,
		r.AllAcks.Max, r.Status.P50, r.CPUPerUpdate)
	_ = w.Flush()
	c := r.Connect
	fmt.Fprintf(out, "\nconnect (all %d at once): acks p50 %s, p99 %s, all %s; status N/N %s; controller CPU %s; apiserver CPU %s; %d TokenReviews (mean %s), %d bundle Secret GETs, %d API requests; %v connect errors, %v unauthorized\n",
		r.Streams, c.Acks.P50, c.Acks.P99, c.Acks.Max, c.Status, c.ControllerCPU, c.APIServerCPU, c.TokenReviews, c.ReviewMean, c.BundleReads, c.Requests,
		c.ConnectErrors, c.Unauthorized)
	m := r.Memory
	fmt.Fprintf(out, "controller at 0 → %d idle streams (after GC): heap %.1f → %.1f MiB (%.1f KiB/stream), RSS %.1f → %.1f MiB (%.1f KiB/stream), goroutines %d → %d (%.2f/stream); sidecars' heap in this process %.1f KiB/stream\n",
		r.Streams, mib(float64(m.BaseHeap)), mib(float64(m.LoadedHeap)), m.HeapPerStream/1024, mib(float64(m.BaseRSS)), mib(float64(m.LoadedRSS)),
		m.RSSPerStream/1024, m.BaseGoroutines, m.Goroutines, m.GoroutinesPer, m.SidecarHeapPerStream/1024)
	fmt.Fprintf(out, "idle over %s: controller CPU %s, apiserver CPU %s, %d API requests\n", r.Idle.Wall, r.Idle.ControllerCPU, r.Idle.APIServerCPU, r.Idle.Requests)
	if s := r.Storm; s != nil {
		fmt.Fprintf(out, "restart (from SIGTERM): %d streams ended, the last at %s; controller exited %s, new one listening %s; %d failed attempts (%s to %s); first stream back %s, all connected %s, all acked %s; status lowest %d/%d, N/N again %s\n",
			s.StreamsEnded, s.AllEnded, s.Exited, s.Listening, s.Unavailable, s.FirstFailed, s.LastFailed, s.FirstConnected,
			s.Connected, s.AllAcked, s.StatusLowest, r.Streams, s.StatusBack)
		fmt.Fprintf(out, "  new controller up to all acked: %d TokenReviews (mean %s, at most %d in flight; its tokenreviews_total metric says %v), %d bundle Secret GETs, %d API requests in all, CPU %s; apiserver CPU %s; sidecars: %v failed connects, %v reconnects; old controller's lifetime CPU %s\n",
			s.TokenReviews, s.ReviewMean, s.PeakReviews, s.TokenReviewMetric, s.BundleReads, s.Requests, s.ControllerCPU, s.APIServerCPU,
			s.ConnectErrors, s.Reconnects, s.OldControllerCPU)
		fmt.Fprintf(out, "  its API requests: %s\n", byRequest(s.ByRequest))
	}
	fmt.Fprintln(out)
	for _, f := range r.Figures {
		fmt.Fprintf(out, "figure %s %s %s\n", f.Name, strconv.FormatFloat(f.Value, 'f', -1, 64), f.Unit)
	}
}

func mib(b float64) float64 { return b / (1 << 20) }

// byRequest lists request counts, most first.
func byRequest(m map[string]int64) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
