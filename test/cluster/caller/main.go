// Command caller is a test workload for make e2e: a pod that calls other
// functions with the ServiceAccount tokens the kubelet projects into it, so
// the test can send requests that carry a real, pod-bound token.
//
//	POST /call {"url": "...", "method": "GET", "headers": {...}, "token": "orders"}
//
// reads the token at <tokens dir>/<token>/token (a projected
// serviceAccountToken volume; "" sends none), sends the request with it as a
// Bearer token and answers {"status": <code>, "body": "<response body>"}.
// The token itself is never written to the response or the log.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

type callRequest struct {
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
	Token   string            `json:"token"`
}

type callReply struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error,omitempty"`
}

var tokenName = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

func main() {
	listen := flag.String("listen", ":8080", "address to serve on")
	tokens := flag.String("tokens", "/var/run/secrets/tokens", "directory of projected token volumes, one per audience")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	client := &http.Client{Timeout: 30 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("POST /call", func(w http.ResponseWriter, r *http.Request) {
		var in callRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		out := call(r, client, *tokens, in)
		log.Info("call", "url", in.URL, "token", in.Token, "status", out.Status, "error", out.Error)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "error", err)
		os.Exit(1)
	}
}

func call(r *http.Request, client *http.Client, dir string, in callRequest) callReply {
	method := in.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(r.Context(), method, in.URL, nil)
	if err != nil {
		return callReply{Error: err.Error()}
	}
	for k, v := range in.Headers {
		req.Header.Set(k, v)
	}
	if in.Token != "" {
		if !tokenName.MatchString(in.Token) {
			return callReply{Error: fmt.Sprintf("token name %q: want [a-z0-9-]", in.Token)}
		}
		tok, err := os.ReadFile(filepath.Join(dir, in.Token, "token"))
		if err != nil {
			return callReply{Error: fmt.Sprintf("read token %s: %v", in.Token, errors.Unwrap(err))}
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := client.Do(req)
	if err != nil {
		return callReply{Error: err.Error()}
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return callReply{Status: resp.StatusCode, Body: string(body)}
}
