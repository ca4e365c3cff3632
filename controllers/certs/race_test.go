package certs_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/authgate/authgate/controllers/certs"
)

// racingClient runs before() once, just before its first write of a
// Secret reaches the API server, and records that write's error.
type racingClient struct {
	client.Client
	once   sync.Once
	before func()
	mu     sync.Mutex
	errs   []error
}

func (c *racingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	return c.write(obj, func() error { return c.Client.Create(ctx, obj, opts...) })
}

func (c *racingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	return c.write(obj, func() error { return c.Client.Update(ctx, obj, opts...) })
}

func (c *racingClient) write(obj client.Object, do func() error) error {
	if _, ok := obj.(*corev1.Secret); !ok {
		return do()
	}
	c.once.Do(c.before)
	err := do()
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
	return err
}

func sameFiles(t *testing.T, e *env, dirs ...string) {
	t.Helper()
	want := e.state().data
	for _, d := range dirs {
		for _, k := range []string{certs.KeyCACert, certs.KeyTLSCert, certs.KeyTLSKey} {
			got, err := os.ReadFile(filepath.Join(d, k))
			if err != nil {
				t.Fatalf("read %s: %v", k, err)
			}
			if !bytes.Equal(got, want[k]) {
				t.Errorf("%s in %s differs from the secret", k, d)
			}
		}
	}
}

// Two replicas find no Secret; the second creates it while the first is
// about to: the first's Create fails with AlreadyExists, it reloads and
// serves the winner's certificate.
func TestRaceOnCreateConvergesOnTheWinner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b, dirB := e.manager(k8s)
	rc := &racingClient{Client: k8s, before: func() { e.ensure(b) }}
	a, dirA := e.manager(rc)
	e.ensure(a)
	if len(rc.errs) != 1 || !apierrors.IsAlreadyExists(rc.errs[0]) {
		t.Fatalf("loser's writes: %v, want one AlreadyExists", rc.errs)
	}
	e.check(a, dirA, nil)
	e.check(b, dirB, nil)
	sameFiles(t, e, dirA, dirB)
}

// Two replicas both find the serving certificate due; the second renews it
// while the first is about to: the first's Update conflicts, it reloads and
// keeps the winner's (fresh) certificate without writing.
func TestRaceOnRenewalConvergesOnTheWinner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b, dirB := e.manager(k8s)
	e.ensure(b)
	old := e.state().data[certs.KeyTLSCert]
	rc := &racingClient{Client: k8s, before: func() { e.ensure(b) }}
	a, dirA := e.manager(rc)
	e.clock.Advance(6 * day)
	e.ensure(a)
	if len(rc.errs) != 1 || !apierrors.IsConflict(rc.errs[0]) {
		t.Fatalf("loser's writes: %v, want one Conflict", rc.errs)
	}
	st := e.check(a, dirA, nil)
	if bytes.Equal(st.data[certs.KeyTLSCert], old) {
		t.Error("serving certificate not renewed")
	}
	sameFiles(t, e, dirA, dirB)
}

// Several replicas run Ensure at the same moment, for a fresh issue, a
// renewal and a CA rotation: all end with the Secret's certificates.
func TestConcurrentReplicasConverge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const replicas = 4
	var ms []*certs.Manager
	var dirs []string
	for range replicas {
		m, d := e.manager(k8s)
		ms, dirs = append(ms, m), append(dirs, d)
	}
	for _, step := range []time.Duration{0, 6 * day, 15*day - time.Hour} {
		e.clock.Advance(step)
		start := make(chan struct{})
		errs := make(chan error, replicas)
		for _, m := range ms {
			go func() {
				<-start
				errs <- m.Ensure(context.Background())
			}()
		}
		close(start)
		for range replicas {
			if err := <-errs; err != nil {
				t.Fatalf("after %s: Ensure: %v", step, err)
			}
		}
		e.check(nil, dirs[0], nil)
		sameFiles(t, e, dirs...)
	}
	if got := len(e.state().cas); got != 2 {
		t.Errorf("after the CA was due: %d trusted CAs, want 2", got)
	}
}
