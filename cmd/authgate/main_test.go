package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the whole demo in-process, exactly as `make demo` does: it
// fails if any step of the walkthrough misbehaves.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"demo"}, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("demo failed: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"no token", "→ 401", "X-Authgate-Subject: alice", "reason: missing_scope", "rego_denied",
		"X-Authgate-Subject: partner-acme", "audit_denials", "authgate_requests_total",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "FAIL") {
		t.Errorf("demo reported a failing step:\n%s", got)
	}
}

func TestHashKey(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"hash-key", "agk_test_partner_key_0123456789abcdef"}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	want := "sha256:f0992dacd3492d57ea3de793332ac43c28d7b65ac787eb85ae67a8f1b50d4616\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := run(context.Background(), []string{"hash-key"}, strings.NewReader("agk_test_partner_key_0123456789abcdef\n"), &out, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Fatalf("from stdin: got %q, want %q", out.String(), want)
	}
}

func TestGenKeyHashesItself(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"gen-key"}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %q, want key and hash lines", out.String())
	}
	key := strings.TrimSpace(strings.TrimPrefix(lines[0], "key:"))
	hash := strings.TrimSpace(strings.TrimPrefix(lines[1], "hash:"))
	if HashKey(key) != hash {
		t.Fatalf("got hash %q for key, want %q", hash, HashKey(key))
	}
}

func TestUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"nope"}, nil, &out, &out); err == nil {
		t.Fatal("got nil error for an unknown command")
	}
}
