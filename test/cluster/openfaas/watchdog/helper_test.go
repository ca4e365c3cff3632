package watchdog_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/test/cluster/openfaas/watchdog"
	"github.com/authgate/authgate/test/logbuf"
	"github.com/authgate/authgate/test/wait"
)

// The test binary doubles as the function process ("repro-upstream ADDR
// [flags]") and as the watchdog command ("repro-watchdog [flags]", for the
// real-signal test).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "repro-upstream":
			os.Exit(upstreamMain(os.Args[2:]))
		case "repro-watchdog":
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM)
			os.Exit(watchdog.Main(context.Background(), os.Args[2:], os.Environ(), os.Stdout, os.Stderr, sig))
		}
	}
	os.Exit(m.Run())
}

// received is what the upstream reports about a request.
type received struct {
	Method           string
	RequestURI       string
	Host             string
	Header           http.Header
	Body             string
	TransferEncoding []string
	ContentLength    int64
}

// upstreamMain is the test function: it listens on ADDR (after -delay),
// echoes requests as JSON at /, answers /status/N with N, /sleep?d=D after
// D, /ready with "ready from the function". -term says what SIGTERM does:
// "default" (the process dies of it), "ignore" (logged, keeps serving),
// "exit0" (exits 0).
func upstreamMain(args []string) int {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	delay := fs.Duration("delay", 0, "wait before listening")
	term := fs.String("term", "default", "SIGTERM behaviour")
	if len(args) < 1 || fs.Parse(args[1:]) != nil {
		return 2
	}
	switch *term {
	case "ignore", "exit0":
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() {
			<-sig
			fmt.Println("upstream got SIGTERM")
			if *term == "exit0" {
				os.Exit(0)
			}
		}()
	}
	time.Sleep(*delay)
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		return 1
	}
	fmt.Println("upstream listening")
	fmt.Fprintln(os.Stderr, "upstream says hello on stderr")
	mux := http.NewServeMux()
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(code)
		_, _ = w.Write([]byte("status body"))
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		time.Sleep(d)
		_, _ = w.Write([]byte("slept"))
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ready from the function"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(received{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header,
			Body: string(b), TransferEncoding: r.TransferEncoding, ContentLength: r.ContentLength})
	})
	_ = http.Serve(ln, mux)
	return 0
}

// freeAddr returns a loopback address nothing listens on (just now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// harness is one watchdog with its test upstream.
type harness struct {
	w        *watchdog.Watchdog
	cfg      watchdog.Config
	upstream string
	log      *logbuf.Buffer
	stdout   *logbuf.Buffer
	stderr   *logbuf.Buffer
	sig      chan os.Signal
	base     string
}

// start runs a watchdog on loopback whose function is the test binary in
// upstream mode with upstreamArgs; edit changes the configuration read
// from env first.
func start(t *testing.T, env []string, edit func(*watchdog.Config), upstreamArgs ...string) *harness {
	t.Helper()
	up := freeAddr(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fprocess := self + " repro-upstream " + up
	for _, a := range upstreamArgs {
		fprocess += " " + a
	}
	cfg, err := watchdog.FromEnv(append([]string{"mode=http", "fprocess=" + fprocess, "upstream_url=http://" + up}, env...))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenHost, cfg.Port, cfg.MetricsPort = "127.0.0.1", 0, 0
	cfg.LockPath = t.TempDir() + "/.lock"
	if edit != nil {
		edit(&cfg)
	}
	h := &harness{cfg: cfg, upstream: up, log: &logbuf.Buffer{}, stdout: &logbuf.Buffer{}, stderr: &logbuf.Buffer{},
		sig: make(chan os.Signal, 1)}
	h.w = watchdog.New(cfg, watchdog.Options{Log: newLogger(h.log), Stdout: h.stdout, Stderr: h.stderr, Signals: h.sig})
	if err := h.w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.w.Close)
	h.base = "http://" + h.w.Addr().String()
	return h
}

// get sends a request and returns the response with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// upstreamUp waits until the test function listens.
func (h *harness) upstreamUp(t *testing.T) {
	t.Helper()
	wait.For(t, 0, func() bool {
		c, err := net.Dial("tcp", h.upstream)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "the test function to listen on %s", h.upstream)
}

func newLogger(w io.Writer) *log.Logger { return log.New(w, "", 0) }
