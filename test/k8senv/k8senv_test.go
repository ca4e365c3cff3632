package k8senv

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recordTB records how Assets ends a test instead of ending this one.
type recordTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordTB) Helper() {}

func (r *recordTB) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recordTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// assetsOutcome runs Assets on a recording TB in its own goroutine, as the
// testing package runs a test.
func assetsOutcome(t *testing.T) *recordTB {
	r := &recordTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Assets(r)
	}()
	<-done
	return r
}

func TestMissingBinariesSkipOrFailOnCI(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", t.TempDir())
	for _, tc := range []struct {
		ci       string
		wantSkip bool
	}{{"", true}, {"false", true}, {"true", false}, {"1", false}} {
		t.Setenv("CI", tc.ci)
		r := assetsOutcome(t)
		msg := r.skipped + r.failed
		if (r.skipped != "") != tc.wantSkip || (r.failed != "") == tc.wantSkip {
			t.Errorf("CI=%q: got skipped %q, failed %q; want skipped %v", tc.ci, r.skipped, r.failed, tc.wantSkip)
		}
		if !strings.Contains(msg, "make envtest") {
			t.Errorf("CI=%q: got %q, want it to name make envtest", tc.ci, msg)
		}
	}
}

func TestRepoRootIsTheModuleRoot(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	want, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if root != want {
		t.Fatalf("got root %s, want %s (two levels above test/k8senv)", root, want)
	}
}
