package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart geometry.
const (
	svgW      = 900
	marginL   = 70
	marginR   = 20
	latTop    = 50
	latH      = 260
	thrTop    = latTop + latH + 90
	thrH      = 160
	svgH      = thrTop + thrH + 70
	plotW     = svgW - marginL - marginR
	barColors = "#9ecae1,#4292c6,#08306b"
)

// svg draws p50/p90/p99 per target on a log scale and, below, saturation
// throughput relative to the baseline with the 0.75 and 0.5 goals.
func (r *report) svg() string {
	var ms []measurement
	for _, m := range r.Ms {
		if m.Err == nil {
			ms = append(ms, m)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">authgate-proxy latency at %d req/s open loop (µs, log scale)</text>`+"\n", marginL, r.Opts.Rate)
	fmt.Fprintf(&b, `<text x="%d" y="38" fill="#555">%s · %d vCPU · %s</text>`+"\n", marginL, html.EscapeString(r.Machine.Date), r.Machine.CPUs, html.EscapeString(r.Machine.GoVersion))
	if len(ms) == 0 {
		b.WriteString("</svg>\n")
		return b.String()
	}
	r.latencyPanel(&b, ms)
	r.throughputPanel(&b, ms)
	b.WriteString("</svg>\n")
	return b.String()
}

func (r *report) latencyPanel(b *strings.Builder, ms []measurement) {
	hi := 1.0
	for _, m := range ms {
		hi = math.Max(hi, us(m.Open.Latency.P99))
	}
	lo, top := 10.0, math.Pow(10, math.Ceil(math.Log10(hi)))
	y := func(v float64) float64 {
		v = math.Max(v, lo)
		return latTop + latH - latH*(math.Log10(v)-math.Log10(lo))/(math.Log10(top)-math.Log10(lo))
	}
	for v := lo; v <= top; v *= 10 {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			marginL, svgW-marginR, y(v), y(v), marginL-6, y(v)+4, fmtUS(v))
	}
	colors := strings.Split(barColors, ",")
	group := float64(plotW) / float64(len(ms))
	bw := group * 0.8 / 3
	for i, m := range ms {
		x0 := marginL + group*float64(i) + group*0.1
		l := m.Open.Latency
		for j, v := range []int64{l.P50, l.P90, l.P99} {
			x, top := x0+bw*float64(j), y(us(v))
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s p%s %.0f µs</title></rect>`+"\n",
				x, top, bw-1, latTop+latH-top, colors[j], html.EscapeString(m.T.Name), []string{"50", "90", "99"}[j], us(v))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%.0f</text>`+"\n", x+bw/2, top-3, us(v))
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x0+bw*1.5, latTop+latH+16, html.EscapeString(m.T.Name))
	}
	for j, name := range []string{"p50", "p90", "p99"} {
		x := svgW - marginR - 180 + j*60
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, latTop-12, colors[j], x+16, latTop-2, name)
	}
}

func (r *report) throughputPanel(b *strings.Builder, ms []measurement) {
	base := r.find("baseline")
	if base == nil || base.Sat.RPS == 0 {
		return
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="15" font-weight="bold">throughput at saturation, × baseline (%.0f req/s)</text>`+"\n", marginL, thrTop-20, base.Sat.RPS)
	y := func(ratio float64) float64 { return thrTop + thrH - thrH*math.Min(ratio, 1.2)/1.2 }
	for _, g := range []struct {
		v     float64
		label string
	}{{0, "0"}, {0.5, "0.5 (fresh RS256 goal)"}, {0.75, "0.75 (JWT + Rego goal)"}, {1, "1"}} {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#bbb" stroke-dasharray="4 3"/><text x="%d" y="%.1f" text-anchor="end" font-size="10">%s</text>`+"\n",
			marginL, svgW-marginR, y(g.v), y(g.v), marginL-6, y(g.v)+4, fmt.Sprintf("%.2g", g.v))
		if g.v > 0 && g.v < 1 {
			fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" font-size="10" fill="#777">%s</text>`+"\n", svgW-marginR, y(g.v)-3, g.label)
		}
	}
	group := float64(plotW) / float64(len(ms))
	for i, m := range ms {
		ratio := m.Sat.RPS / base.Sat.RPS
		x := marginL + group*float64(i) + group*0.25
		fill := "#41ab5d"
		switch m.T.Kind {
		case kindPeer:
			fill = "#fd8d3c"
		case kindBaseline:
			fill = "#969696"
		}
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %.0f req/s</title></rect>`+"\n",
			x, y(ratio), group*0.5, thrTop+thrH-y(ratio), fill, html.EscapeString(m.T.Name), m.Sat.RPS)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.2f</text>`+"\n", x+group*0.25, y(ratio)-3, ratio)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x+group*0.25, thrTop+thrH+16, html.EscapeString(m.T.Name))
	}
}

func fmtUS(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gms", v/1e3)
	}
	return fmt.Sprintf("%gµs", v)
}
