package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/app"
	"github.com/authgate/authgate/proxy/labels"
	"github.com/authgate/authgate/test/logbuf"
	"github.com/authgate/authgate/test/wait"
)

func TestCheckFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:8080'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'https://x'}\npolicies: [{name: p, routes: []}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"--check", "--config", good}, &out); err != nil {
		t.Fatalf("good config: %v", err)
	}
	err := run([]string{"--check", "--config", bad}, &out)
	if err == nil {
		t.Fatal("got nil error for a bad config")
	}
	for _, want := range []string{"upstream.url", "policies[0].routes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestBadFlags(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{"--log-level", "loud"}, {"--labels", "novalue"}, {"--nope"}} {
		if err := run(args, &out); err == nil {
			t.Errorf("%v: got nil error", args)
		}
	}
}

// policyYAML is one policy named name, selecting app=app, whose Rego module
// is rego.
func policyYAML(name, app, rego string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    selector: {matchLabels: {app: %s}}\n    authentication: {apiKeys: {}}\n", name, app)
	b.WriteString("    routes: [{name: r, paths: ['/**']}]\n    rego:\n      modules:\n        - name: authz.rego\n          source: |\n")
	for _, line := range strings.Split(rego, "\n") {
		b.WriteString("            " + line + "\n")
	}
	return b.String()
}

const (
	regoGood   = "package authgate.authz\n\nimport rego.v1\n\ndecision := {\"allow\": true}"
	regoBroken = "package authgate.authz\n\nimport rego.v1\n\ndecision := {\"allow\": true} if { input.nope[ }"
)

func bundleYAML(policies ...string) string {
	return "apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:8080'}\n" +
		"apiKeys:\n  keys: [{name: k, hash: 'sha256:f0992dacd3492d57ea3de793332ac43c28d7b65ac787eb85ae67a8f1b50d4616'}]\n" +
		"policies:\n" + strings.Join(policies, "")
}

// reloadOutcome runs the proxy on cfgPath (loopback listeners) until its
// first load attempt and returns the error it logged, or "" when the
// configuration was loaded.
func reloadOutcome(t *testing.T, cfgPath, labelsPath string, lbls map[string]string) string {
	t.Helper()
	logs := &logbuf.Buffer{}
	a, err := app.New(app.Options{
		ConfigPath: cfgPath, LabelsPath: labelsPath, Labels: lbls, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		ShutdownTimeout: time.Second, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	outcome := ""
	wait.For(t, 15*time.Second, func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, Error string }
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			switch {
			case strings.HasPrefix(rec.Msg, "configuration rejected"):
				outcome = rec.Error
				return true
			case rec.Msg == "configuration loaded":
				return true
			}
		}
		return false
	}, "a load attempt in the logs: %s", logs)
	return outcome
}

// --check runs the reload path itself: what a reload rejects, --check
// rejects with the same message, for the same labels. A file a reload
// accepts is then checked whole: a policy for another workload that could
// never load is reported too, though this workload's reload (which builds
// only its own policies) accepts the file.
func TestCheckMatchesReload(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", bundleYAML(policyYAML("fn", "fn", regoGood), policyYAML("other", "other", regoGood)))
	labelsFile := write("labels", "app=\"fn\"\n")
	tests := []struct {
		name, config, labelsFlag, labelsFile string
		wantErr                              string // "" for a valid config
		reloadOK                             bool   // a reload with these labels accepts it
	}{
		{"valid with Rego", good, "app=fn", "", "", false},
		{"valid with a labels file", good, "", labelsFile, "", false},
		{"selected policy's Rego does not compile", write("selected.yaml", bundleYAML(policyYAML("fn", "fn", regoBroken))), "app=fn", "", "policy fn: rego: ", false},
		{"selected by the labels file", write("byfile.yaml", bundleYAML(policyYAML("fn", "fn", regoBroken))), "", labelsFile, "policy fn: rego: ", false},
		{"another workload's policy does not compile", write("other.yaml", bundleYAML(policyYAML("fn", "fn", regoGood), policyYAML("other", "other", regoBroken))), "app=fn", "", "policy other: rego: ", true},
		{"no labels select the broken policy", write("none.yaml", bundleYAML(policyYAML("other", "other", regoBroken))), "", "", "policy other: rego: ", true},
		{"labels file missing", good, "", filepath.Join(dir, "missing"), "missing", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--check", "--config", tt.config}
			if tt.labelsFlag != "" {
				args = append(args, "--labels", tt.labelsFlag)
			}
			if tt.labelsFile != "" {
				args = append(args, "--labels-file", tt.labelsFile)
			}
			var out bytes.Buffer
			err := run(args, &out)
			lbls, perr := labels.ParseFlag(tt.labelsFlag)
			if perr != nil {
				t.Fatal(perr)
			}
			logged := reloadOutcome(t, tt.config, tt.labelsFile, lbls)
			if tt.wantErr == "" {
				if err != nil || !strings.Contains(out.String(), "config is valid") || logged != "" {
					t.Fatalf("got check error %v, output %q and reload error %q, want a valid config both ways", err, out.String(), logged)
				}
				return
			}
			if err == nil {
				t.Fatalf("got a valid config (%q), want an error like %q (reload logged %q)", out.String(), tt.wantErr, logged)
			}
			if tt.reloadOK {
				if !strings.Contains(err.Error(), tt.wantErr) || logged != "" {
					t.Fatalf("got check error %q and reload error %q, want %q from check only", err, logged, tt.wantErr)
				}
				return
			}
			if !strings.Contains(err.Error(), tt.wantErr) || err.Error() != logged {
				t.Fatalf("got check error %q and reload error %q, want the same error, holding %q", err, logged, tt.wantErr)
			}
		})
	}
}

func TestPlatformFlags(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.yaml")
	if err := os.WriteFile(good, []byte("apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:8080'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"--check", "--config", good, "--trusted-proxies", "127.0.0.1/32, ::1/128,10.8.0.0/16", "--upstream-timeout", "300s"}, &out); err != nil {
		t.Fatalf("valid platform flags: %v", err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--trusted-proxies", "10.0.0.0/8,gateway"}, `--trusted-proxies "gateway"`},
		{[]string{"--trusted-proxies", "0.0.0.0/0"}, "trusts every address"},
		{[]string{"--upstream-timeout", "-1s"}, "--upstream-timeout"},
	} {
		err := run(append([]string{"--check", "--config", good}, tt.args...), &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error naming %s", tt.args, err, tt.want)
		}
	}
}
