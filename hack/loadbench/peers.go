package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// opaPolicy is what the OPA-server peer evaluates per request: verify the
// RS256 token against the issuer's JWKS, then the same department ABAC rule
// as the authgate jwt-rego configuration.
const opaPolicy = `package authz

default allow := false

allow if {
	[valid, _, payload] := io.jwt.decode_verify(input.token, {"cert": data.jwks, "iss": data.issuer, "aud": "api"})
	valid
	segs := split(trim_left(input.path, "/"), "/")
	segs[0] == "api"
	payload.department == segs[1]
}
`

// peerTargets are the peers whose binaries are in binDir; missing ones are
// reported and skipped.
func (e *env) peerTargets(binDir string, out io.Writer) []*target {
	bearer := [][2]string{{"Authorization", "Bearer " + e.token}}
	peers := []struct {
		name, bin, title string
		start            func(ctx context.Context, bin string) (string, []*proc, error)
	}{
		{"oauth2-proxy", "oauth2-proxy", "peer: oauth2-proxy (bearer JWT)", e.startOAuth2Proxy},
		{"opa-proxy", "opa", "peer: proxy + OPA server per request", e.startOPAProxy},
	}
	var ts []*target
	for _, p := range peers {
		bin, ok := findBin(binDir, p.bin)
		if !ok {
			fmt.Fprintf(out, "peer %s skipped: no %s/%s (hack/bench.sh --peers builds it)\n", p.name, binDir, p.bin)
			continue
		}
		start := p.start
		ts = append(ts, &target{
			Name: p.name, Title: p.title, Kind: kindPeer, Path: "/api/sales/report", Headers: bearer,
			start: func(ctx context.Context) (string, []*proc, error) { return start(ctx, bin) },
		})
	}
	return ts
}

func findBin(dir, name string) (string, bool) {
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", false
	}
	st, err := os.Stat(p)
	return p, err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// startOAuth2Proxy runs oauth2-proxy in bearer-JWT mode: it discovers the
// dev issuer over loopback and verifies every bearer token itself.
func (e *env) startOAuth2Proxy(ctx context.Context, bin string) (string, []*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	args := []string{
		"--http-address=" + addr, "--upstream=http://" + e.upAddr + "/",
		"--provider=oidc", "--oidc-issuer-url=" + e.issuer.URL(), "--client-id=api", "--client-secret=unused",
		"--cookie-secret=0123456789abcdef0123456789abcdef", "--email-domain=*",
		"--skip-jwt-bearer-tokens=true", "--skip-provider-button=true",
		"--request-logging=false", "--auth-logging=false", "--standard-logging=false",
	}
	p, err := startProc("oauth2-proxy", bin, args, nil, filepath.Join(e.dir, "oauth2-proxy.log"))
	if err != nil {
		return "", nil, err
	}
	if _, err := waitReady(ctx, p, "http://"+addr+"/ping", 10*time.Millisecond, 30*time.Second); err != nil {
		p.stop()
		return "", nil, err
	}
	return addr, []*proc{p}, nil
}

// startOPAProxy runs an OPA server with the policy and the JWKS as data, and
// the small reverse proxy that asks it about every request.
func (e *env) startOPAProxy(ctx context.Context, bin string) (string, []*proc, error) {
	jwks, err := json.Marshal(e.issuer.PublicJWKS())
	if err != nil {
		return "", nil, fmt.Errorf("jwks: %w", err)
	}
	data, err := json.Marshal(map[string]string{"jwks": string(jwks), "issuer": e.issuer.URL()})
	if err != nil {
		return "", nil, fmt.Errorf("opa data: %w", err)
	}
	polPath, dataPath := filepath.Join(e.dir, "authz.rego"), filepath.Join(e.dir, "data.json")
	if err := os.WriteFile(polPath, []byte(opaPolicy), 0o600); err != nil {
		return "", nil, fmt.Errorf("write policy: %w", err)
	}
	if err := os.WriteFile(dataPath, data, 0o600); err != nil {
		return "", nil, fmt.Errorf("write data: %w", err)
	}
	opaAddr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	opa, err := startProc("opa", bin, []string{"run", "--server", "--addr=" + opaAddr, "--log-level=error", polPath, dataPath},
		nil, filepath.Join(e.dir, "opa.log"))
	if err != nil {
		return "", nil, err
	}
	if _, err := waitReady(ctx, opa, "http://"+opaAddr+"/health", 10*time.Millisecond, 30*time.Second); err != nil {
		opa.stop()
		return "", nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		opa.stop()
		return "", nil, err
	}
	px, err := startProc("opaproxy", e.bins.OPAProxy, []string{"-listen", addr, "-upstream", "http://" + e.upAddr,
		"-opa", "http://" + opaAddr + "/v1/data/authz/allow"}, nil, filepath.Join(e.dir, "opaproxy.log"))
	if err != nil {
		opa.stop()
		return "", nil, err
	}
	if err := waitListening(ctx, px, addr, 10*time.Second); err != nil {
		px.stop()
		opa.stop()
		return "", nil, err
	}
	return addr, []*proc{px, opa}, nil
}
