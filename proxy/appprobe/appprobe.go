// Package appprobe runs the function's kubelet probes from inside the pod.
//
// With inbound capture (package capture) every connection from outside the
// pod to the function's port is answered by the proxy, and the kubelet
// probes from outside the pod: an httpGet probe of the function's health
// path would get the proxy's 401 and the pod would never become ready (or be
// restarted). The injector therefore moves each such probe to the proxy's
// admin port, at Path(name), and passes the original target to the proxy
// (--app-probe <name>=<url>); the proxy runs the probe on loopback, which
// capture leaves alone, and answers with the function's status code.
//
// Only the targets the injector wrote are reachable this way, with GET and
// no body in either direction, so the probe path gives a caller nothing the
// function's health endpoint did not already say: it is not a way around
// authentication to anything else. Like the kubelet, the probe follows no
// redirect (a 3xx counts as success) and does not verify an HTTPS
// function's certificate.
package appprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// PathPrefix is where the admin port serves the probes.
const PathPrefix = "/app-health/"

// MaxTimeout bounds one probe: the kubelet gives up at the probe's
// timeoutSeconds and closes the connection, which cancels the probe sooner.
const MaxTimeout = time.Minute

// Probe is one probe the proxy runs for the kubelet.
type Probe struct {
	// Name is a DNS label: the injector uses <container>-<kind>.
	Name string
	// Target is http://, https:// or tcp:// on 127.0.0.1 or ::1.
	Target *url.URL
}

// Path is where the admin port serves the probe called name.
func Path(name string) string { return PathPrefix + name }

// String is the flag form, "<name>=<target>".
func (p Probe) String() string { return p.Name + "=" + p.Target.String() }

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,126}[a-z0-9])?$`)

// Parse reads the flag form "<name>=<target>".
func Parse(s string) (Probe, error) {
	name, target, ok := strings.Cut(s, "=")
	if !ok {
		return Probe{}, fmt.Errorf("app probe %q: want <name>=<http|https|tcp>://127.0.0.1:<port>[/path]", s)
	}
	if !nameRE.MatchString(name) {
		return Probe{}, fmt.Errorf("app probe %q: name %q must be lower-case letters, digits and '-'", s, name)
	}
	u, err := url.Parse(target)
	if err != nil {
		return Probe{}, fmt.Errorf("app probe %q: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "tcp":
		if u.Path != "" || u.RawQuery != "" {
			return Probe{}, fmt.Errorf("app probe %q: a tcp probe has no path", s)
		}
	default:
		return Probe{}, fmt.Errorf("app probe %q: scheme %q, want http, https or tcp", s, u.Scheme)
	}
	if u.User != nil || u.Fragment != "" {
		return Probe{}, fmt.Errorf("app probe %q: no user or fragment", s)
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return Probe{}, fmt.Errorf("app probe %q: the target must be on 127.0.0.1 or ::1 (the function in this pod)", s)
	}
	if p := u.Port(); p == "" || p == "0" {
		return Probe{}, fmt.Errorf("app probe %q: the target needs a port", s)
	}
	return Probe{Name: name, Target: u}, nil
}

// Handler serves GET Path(name) for each probe; anything else is 404.
func Handler(probes []Probe) http.Handler {
	mux := http.NewServeMux()
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:             nil, // never through an environment proxy
			DisableKeepAlives: true,
			// The kubelet does not verify a probed function's certificate either.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // a loopback health probe, as the kubelet runs it
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, p := range probes {
		mux.HandleFunc("GET "+Path(p.Name), func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), MaxTimeout)
			defer cancel()
			code, err := run(ctx, client, p, r)
			w.Header().Set("Content-Type", "text/plain")
			if err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = fmt.Fprintf(w, "probe %s failed: %v\n", p.Name, err)
				return
			}
			w.WriteHeader(code)
			_, _ = fmt.Fprintf(w, "probe %s: %d\n", p.Name, code)
		})
	}
	return mux
}

func run(ctx context.Context, client *http.Client, p Probe, in *http.Request) (int, error) {
	if p.Target.Scheme == "tcp" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", p.Target.Host)
		if err != nil {
			return 0, unwrapDial(err)
		}
		_ = c.Close()
		return http.StatusOK, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Target.String(), nil)
	if err != nil {
		return 0, err
	}
	// The kubelet's headers (User-Agent, Accept and the probe's own
	// httpHeaders, Host among them) go on to the function.
	for k, vs := range in.Header {
		req.Header[k] = vs
	}
	req.Host = in.Host
	resp, err := client.Do(req)
	if err != nil {
		return 0, unwrapDial(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// unwrapDial keeps the reason (connection refused, timeout) without the
// URL, which the caller already knows.
func unwrapDial(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
