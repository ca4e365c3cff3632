package reload_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/reload"
)

// revisioned is the test bundle at revision rev, with policy fn's version.
func revisioned(rev int64, version string) []byte {
	return fmt.Appendf(nil, "revision: %d\n%s", rev, bundleWith("true", version))
}

func bundleWith(rego, version string) string {
	b := bundle[:len(bundle)-len("REGO\n")] + rego + "\n"
	return replaceOnce(b, "  - name: fn\n", "  - name: fn\n    version: '"+version+"'\n")
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	panic("not found: " + old)
}

// A pushed configuration goes through the file's path (validated, built,
// swapped only on success) and bundles are ordered by revision whichever
// way they arrive: a file the kubelet projects late, older than what was
// pushed, is not loaded; a bad push keeps the last good configuration.
func TestLoadDataOrdersByRevision(t *testing.T) {
	t.Parallel()
	l, sw, _ := newLoader(t, "true")
	path := l.ConfigPath()
	write := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	activations := 0
	l.SetOnActivate(func() { activations++ })
	write(revisioned(10, "1"))
	if err := l.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := func(rev int64, version, source string) {
		t.Helper()
		e, ok := l.Enforced()
		if !ok || e.Revision != rev || e.Policies["fn"] != version || e.Source != source || len(e.Policies) != 1 {
			t.Fatalf("enforced %+v (loaded %v), want revision %d with fn at version %s from %s (only the selected policy)", e, ok, rev, version, source)
		}
		if got := sw.Load().Hash(); got != e.Hash {
			t.Fatalf("active runtime hash %s, Enforced says %s", got, e.Hash)
		}
	}
	want(10, "1", reload.SourceFile)

	pushed := revisioned(11, "2")
	if err := l.LoadData(t.Context(), pushed); err != nil {
		t.Fatalf("push of revision 11: %v", err)
	}
	want(11, "2", reload.SourcePush)
	if e, _ := l.Enforced(); e.Hash != config.Hash(pushed) {
		t.Fatalf("enforced hash %s, want config.Hash of the pushed bytes", e.Hash)
	}
	// The file still holds revision 10: the poll must not undo the push.
	if err := l.Load(t.Context()); !errors.Is(err, reload.ErrStale) {
		t.Fatalf("file at revision 10 after a push of 11: got %v, want ErrStale", err)
	}
	want(11, "2", reload.SourcePush)
	if err := l.LoadData(t.Context(), pushed); !errors.Is(err, reload.ErrUnchanged) {
		t.Fatalf("the same push again: got %v, want ErrUnchanged", err)
	}
	if err := l.LoadData(t.Context(), revisioned(9, "0")); !errors.Is(err, reload.ErrStale) {
		t.Fatalf("push of an older revision: got %v, want ErrStale", err)
	}
	// A bad update never replaces the last good configuration.
	bad := replaceOnce(string(revisioned(12, "3")), "paths: ['/**']", "paths: ['no-leading-slash']")
	if err := l.LoadData(t.Context(), []byte(bad)); err == nil || errors.Is(err, reload.ErrStale) || errors.Is(err, reload.ErrUnchanged) {
		t.Fatalf("push with an invalid route of the selected policy: got %v, want it rejected", err)
	}
	if err := l.LoadData(t.Context(), []byte("revision: 13\nnot: [a proxy config")); err == nil {
		t.Fatal("push that does not parse: accepted")
	}
	want(11, "2", reload.SourcePush)
	// The kubelet catches up: the file at the pushed revision is the same
	// content (unchanged), and a newer file wins over the push.
	write(pushed)
	if err := l.Load(t.Context()); !errors.Is(err, reload.ErrUnchanged) {
		t.Fatalf("file now equal to the push: got %v, want ErrUnchanged", err)
	}
	write(revisioned(14, "4"))
	if err := l.Load(t.Context()); err != nil {
		t.Fatalf("file at revision 14: %v", err)
	}
	want(14, "4", reload.SourceFile)
	if activations != 3 {
		t.Fatalf("OnActivate called %d times, want 3 (file 10, push 11, file 14)", activations)
	}
}

// Before the kubelet fills the (optional) bundle volume, a pushed
// configuration may already be enforced: the missing file is then no
// failure (no reload failure counted, so no alert).
func TestMissingFileWhilePushedIsNoFailure(t *testing.T) {
	t.Parallel()
	l, _, m := newLoader(t, "true")
	if err := os.Remove(l.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	if err := l.Load(t.Context()); err == nil {
		t.Fatal("Load of a missing file with nothing enforced: want an error")
	}
	failures := testutil.ToFloat64(m.ConfigReloads.WithLabelValues("failure"))
	if err := l.LoadData(t.Context(), revisioned(5, "1")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := l.Load(t.Context()); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Load of the missing file: got %v, want not-exist", err)
		}
	}
	if got := testutil.ToFloat64(m.ConfigReloads.WithLabelValues("failure")); got != failures {
		t.Fatalf("reload failures went from %v to %v while a pushed configuration was enforced", failures, got)
	}
}
