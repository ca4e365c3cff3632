package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
)

// binaries the harness builds; all from this module.
type binaries struct {
	Proxy, Baseline, Upstream, OPAProxy, ProfProxy string
}

// env is what every target shares: built binaries, the upstream process,
// the dev issuer and the credentials.
type env struct {
	dir      string
	bins     binaries
	upstream *proc
	upAddr   string
	issuer   *devissuer.Issuer
	issSrv   *http.Server
	token    string
	apiKey   string
	keyHash  string
	keep     bool
}

// setup builds everything and starts the shared services. close undoes it.
func setup(ctx context.Context, out io.Writer) (*env, error) {
	if _, err := os.Stat("cmd/authgate-proxy"); err != nil {
		return nil, errors.New("run from the repository root (cmd/authgate-proxy not found)")
	}
	dir, err := os.MkdirTemp("", "authgate-loadbench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	e := &env{dir: dir}
	if err := e.build(ctx, out); err != nil {
		e.close()
		return nil, err
	}
	if err := e.startUpstream(ctx); err != nil {
		e.close()
		return nil, err
	}
	if err := e.startIssuer(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) build(ctx context.Context, out io.Writer) error {
	start := time.Now()
	fmt.Fprintf(out, "building authgate-proxy and harness processes (go build -trimpath) ... ")
	args := []string{"build", "-trimpath", "-o", e.dir + string(filepath.Separator),
		"./cmd/authgate-proxy", "./hack/loadbench/baseline", "./hack/loadbench/upstream",
		"./hack/loadbench/opaproxy", "./hack/loadbench/profproxy"}
	cmd := exec.CommandContext(ctx, "go", args...) //nolint:gosec // fixed packages into the harness's temp dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w: %s", err, b)
	}
	// Flush the ~150 MB of fresh binaries now: their writeback would
	// otherwise take CPU from the first measurement.
	syscall.Sync()
	fmt.Fprintf(out, "%s\n", time.Since(start).Round(100*time.Millisecond))
	e.bins = binaries{
		Proxy: filepath.Join(e.dir, "authgate-proxy"), Baseline: filepath.Join(e.dir, "baseline"),
		Upstream: filepath.Join(e.dir, "upstream"), OPAProxy: filepath.Join(e.dir, "opaproxy"),
		ProfProxy: filepath.Join(e.dir, "profproxy"),
	}
	return nil
}

func (e *env) startUpstream(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := startProc("upstream", e.bins.Upstream, []string{"-listen", addr}, nil, filepath.Join(e.dir, "upstream.log"))
	if err != nil {
		return err
	}
	e.upstream, e.upAddr = p, addr
	_, err = waitReady(ctx, p, "http://"+addr+"/", 5*time.Millisecond, 10*time.Second)
	return err
}

// startIssuer serves the dev issuer on loopback (oauth2-proxy discovers it;
// authgate-proxy gets its keys inline) and mints the one token every JWT
// request carries.
func (e *env) startIssuer() error {
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		return fmt.Errorf("dev issuer: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("issuer listen: %w", err)
	}
	iss.SetURL("http://" + ln.Addr().String())
	e.issuer = iss
	e.issSrv = &http.Server{Handler: iss.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = e.issSrv.Serve(ln) }()
	e.token, err = iss.Mint(map[string]any{
		"sub": "alice", "aud": "api", "scope": "orders:read", "email": "alice@example.com",
		"email_verified": true, "department": "sales",
	})
	if err != nil {
		return fmt.Errorf("mint: %w", err)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("api key: %w", err)
	}
	e.apiKey = "agk_" + hex.EncodeToString(b[:])
	e.keyHash = config.HashAPIKey([]byte(e.apiKey))
	return nil
}

func (e *env) close() {
	if e.issSrv != nil {
		_ = e.issSrv.Close()
	}
	if e.upstream != nil {
		e.upstream.stop()
	}
	if e.keep {
		fmt.Fprintf(os.Stderr, "kept %s\n", e.dir)
		return
	}
	_ = os.RemoveAll(e.dir)
}
