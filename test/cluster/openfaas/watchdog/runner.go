package watchdog

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/authgate/authgate/test/cluster/openfaas/internal/relay"
)

// child is the function process (the original's HTTPFunctionRunner.Start):
// stdin a pipe that is never written or closed, stdout and stderr passed on
// line by line.
type child struct {
	cmd     *exec.Cmd
	waitErr error
	exited  chan struct{}
}

func (c *child) wait() error {
	<-c.exited
	return c.waitErr
}

func (c *child) terminate() {
	if c != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
}

func (c *child) kill() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// httpModeHandler is the original's makeHTTPRequestHandler: it starts the
// function and returns the handler that forwards to upstream_url.
func (w *Watchdog) httpModeHandler() (http.HandlerFunc, error) {
	upstream, err := url.Parse(w.cfg.UpstreamURL)
	if err != nil {
		return nil, fmt.Errorf("%w, error: %w", ErrNoUpstream, err)
	}
	name, args := w.cfg.process()
	w.log.Printf("Forking: %s, arguments: %s", name, args)
	c, err := w.startChild(name, args)
	if err != nil {
		return nil, err
	}
	w.child = c
	f := &forwarder{
		cfg:      w.cfg,
		log:      w.log,
		upstream: upstream,
		client:   proxyClient(w.cfg.ExecTimeout),
		stdlib: relay.DirectorProxy(func(out *http.Request) {
			out.URL.Host = upstream.Host
			out.URL.Scheme = "http"
		}),
	}
	return func(rw http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			defer r.Body.Close()
		}
		if err := f.run(rw, r); err != nil {
			rw.WriteHeader(http.StatusInternalServerError)
			_, _ = rw.Write([]byte(err.Error()))
		}
	}, nil
}

func (w *Watchdog) startChild(name string, args []string) (*child, error) {
	cmd := exec.Command(name, args...)
	if _, err := cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	w.bindLoggingPipe("stderr", stderr, w.opts.Stderr)
	w.bindLoggingPipe("stdout", stdout, w.opts.Stdout)
	c := &child{cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// bindLoggingPipe passes a pipe's lines on, dated and prefixed with the
// stream's name when PrefixLogs. With a log_buffer_size below 0 lines are
// read unbuffered; otherwise a line longer than the buffer ends the copy
// ("token too long"), as in the original.
func (w *Watchdog) bindLoggingPipe(name string, pipe io.Reader, out io.Writer) {
	w.log.Printf("Started logging: %s from function.", name)
	flags, prefix := log.LstdFlags, ""
	if !w.cfg.PrefixLogs {
		flags = 0
	}
	logger := log.New(out, prefix, flags)
	line := func(s string) {
		if w.cfg.PrefixLogs {
			logger.Printf("%s: %s", name, s)
		} else {
			logger.Print(s)
		}
	}
	go func() {
		if w.cfg.LogBufferSize < 0 {
			r := bufio.NewReader(pipe)
			for {
				s, err := r.ReadString('\n')
				if err != nil {
					return
				}
				line(s)
			}
		}
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, w.cfg.LogBufferSize), w.cfg.LogBufferSize)
		for sc.Scan() {
			line(sc.Text())
		}
		if err := sc.Err(); err != nil {
			w.log.Printf("Error reading %s: %s", name, err)
		}
	}()
}

// proxyClient is the original's makeProxyClient: the dial timeout is the
// exec timeout, idle connections close after 500 ms, redirects are returned.
func proxyClient(dialTimeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 10 * time.Second}).DialContext,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   100,
			IdleConnTimeout:       500 * time.Millisecond,
			ExpectContinueTimeout: 1500 * time.Millisecond,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type forwarder struct {
	cfg      Config
	log      *log.Logger
	upstream *url.URL
	client   *http.Client
	stdlib   interface {
		ServeHTTP(http.ResponseWriter, *http.Request)
	}
}

// run is the original's HTTPFunctionRunner.Run. The request goes to
// upstream_url + RequestURI with every header copied and the same Host; a
// body that is not buffered (buffer_http) has no length, so it is sent
// chunked. No X-Forwarded-* header is added. X-Timeout (a Go duration) can
// shorten, never lengthen, exec_timeout.
func (f *forwarder) run(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	target := f.upstream.String() + r.RequestURI
	var body io.Reader = r.Body
	if f.cfg.BufferHTTPBody {
		b, _ := io.ReadAll(r.Body)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(r.Method, target, body)
	if err != nil {
		return err
	}
	relay.CopyHeaders(req.Header, r.Header)
	req.Host = r.Host

	ctx, cancel := r.Context(), context.CancelFunc(func() {})
	if t := execTimeout(r, f.cfg.ExecTimeout); t > 0 {
		ctx, cancel = context.WithTimeout(r.Context(), t)
	}
	defer cancel()

	if relay.RequiresStdlibProxy(r) {
		// The original wraps w to count but hands the proxy w itself, so its
		// log line always says 200 and 0 bytes; exec_timeout does not apply.
		f.stdlib.ServeHTTP(w, r)
		f.log.Printf("%s %s - %d - Bytes: %s (%.4fs)", r.Method, r.RequestURI, http.StatusOK, humanSize(0), time.Since(start).Seconds())
		return nil
	}
	res, err := f.client.Do(req.WithContext(ctx))
	if err != nil {
		f.log.Printf("Upstream HTTP request error: %s\n", err.Error())
		status := http.StatusInternalServerError
		if ctx.Err() != nil {
			f.log.Printf("Upstream HTTP killed due to exec_timeout: %s\n", f.cfg.ExecTimeout)
			status = http.StatusGatewayTimeout
		}
		w.Header().Set("X-Duration-Seconds", fmt.Sprintf("%f", time.Since(start).Seconds()))
		w.Header().Add("X-OpenFaaS-Internal", "of-watchdog")
		w.WriteHeader(status)
		return nil
	}
	defer res.Body.Close()
	relay.CopyHeaders(w.Header(), res.Header)
	done := time.Since(start)
	w.Header().Set("X-Duration-Seconds", fmt.Sprintf("%f", done.Seconds()))
	w.WriteHeader(res.StatusCode)
	if _, err := io.Copy(w, res.Body); err != nil {
		f.log.Printf("Error copying response body: %s", err)
	}
	if !strings.HasPrefix(r.UserAgent(), "kube-probe") {
		callID := ""
		if f.cfg.LogCallID {
			callID = " [none]"
			if v := r.Header.Get("X-Call-Id"); v != "" {
				callID = " [" + v + "]"
			}
		}
		f.log.Printf("%s %s - %s - ContentLength: %s (%.4fs)%s", r.Method, r.RequestURI, res.Status,
			humanSize(float64(res.ContentLength)), done.Seconds(), callID)
	}
	return nil
}

func execTimeout(r *http.Request, def time.Duration) time.Duration {
	if v := r.Header.Get("X-Timeout"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d <= def {
			return d
		}
	}
	return def
}

// humanSize is docker/go-units' HumanSize: decimal units, 4 significant
// digits.
func humanSize(size float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	i := 0
	for size >= 1000 && i < len(units)-1 {
		size /= 1000
		i++
	}
	return fmt.Sprintf("%.*g%s", 4, size, units[i])
}
