package injector_test

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/controllers/injector"
)

// With --watch-namespaces the webhooks still see opted-in pods of every
// namespace; one outside the watched namespaces is denied rather than
// started without a sidecar or with one no policy ever reaches.
func TestOnlyWatchedNamespacesAreInjected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		watched   []string
		ns, label string // namespace name and its inject label
		pod       []podOpt
		wantErr   bool
		injected  bool
	}{
		{"cluster-wide", nil, "shop", "enabled", nil, false, true},
		{"watched, namespace opt-in", []string{"shop"}, "shop", "enabled", nil, false, true},
		{"not watched, namespace opt-in", []string{"team-a"}, "shop", "enabled", nil, true, false},
		{"not watched, pod opt-in", []string{"team-a"}, "shop", "", []podOpt{withLabel(injector.LabelInject, "true")}, true, false},
		{"not watched, not opted in", []string{"team-a"}, "shop", "", nil, false, false},
		{"not watched, opted out", []string{"team-a"}, "shop", "enabled", []podOpt{withLabel(injector.LabelInject, "false")}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.WatchedNamespaces = tt.watched
			pod := plainPod(tt.pod...)
			changed, reason, err := injector.Mutate(pod, namespace(tt.ns, tt.label), cfg)
			if (err != nil) != tt.wantErr || changed != tt.injected {
				t.Fatalf("got injected=%v reason=%q err=%v, want injected=%v and an error: %v", changed, reason, err, tt.injected, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "--watch-namespaces") {
				t.Fatalf("got %q, want the denial to name --watch-namespaces", err)
			}
			if err != nil && len(pod.Spec.Containers) != 1 {
				t.Fatal("got the denied pod changed")
			}
		})
	}
}
