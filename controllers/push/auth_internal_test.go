package push

// These tests drive TokenReviewer with a fake TokenReviewInterface. They
// cover only the reviewer's own logic (what it asks, how it reads the
// answer, caching, negative caching, deduplication, bounds); whether a
// real API server answers as assumed is envtest_test.go's job.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/test/fakeclock"
)

// fakeReviews answers TokenReviews with answer, counting them; with gate
// set, each waits for it to close.
type fakeReviews struct {
	t      *testing.T
	answer func(token string) (authenticationv1.TokenReviewStatus, error)
	gate   chan struct{}

	mu    sync.Mutex
	calls int
}

func (f *fakeReviews) Create(ctx context.Context, tr *authenticationv1.TokenReview, _ metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if !slices.Equal(tr.Spec.Audiences, []string{pushapi.Audience}) {
		f.t.Errorf("TokenReview audiences %q, want [%s]", tr.Spec.Audiences, pushapi.Audience)
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	st, err := f.answer(tr.Spec.Token)
	if err != nil {
		return nil, err
	}
	return &authenticationv1.TokenReview{Status: st}, nil
}

func (f *fakeReviews) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// jws is a token shaped like the API server's, expiring at exp (none when
// zero); its signature is not a signature.
func jws(subject string, exp time.Time) string {
	claims := map[string]any{"sub": subject}
	if !exp.IsZero() {
		claims["exp"] = exp.Unix()
	}
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(payload) + "." + enc([]byte("signature"))
}

// podBound is the answer for a pod-bound token of ns/sa on pod.
func podBound(ns, sa, pod string) authenticationv1.TokenReviewStatus {
	return authenticationv1.TokenReviewStatus{
		Authenticated: true,
		Audiences:     []string{pushapi.Audience},
		User: authenticationv1.UserInfo{
			Username: "system:serviceaccount:" + ns + ":" + sa,
			Extra: map[string]authenticationv1.ExtraValue{
				extraPodName: {pod},
				extraPodUID:  {"uid-" + pod},
			},
		},
	}
}

func TestIdentityFrom(t *testing.T) {
	t.Parallel()
	ok := podBound("team-a", "fn", "fn-1")
	with := func(change func(*authenticationv1.TokenReviewStatus)) authenticationv1.TokenReviewStatus {
		st := *ok.DeepCopy()
		change(&st)
		return st
	}
	for _, tc := range []struct {
		name string
		st   authenticationv1.TokenReviewStatus
		want Identity // zero: refused
	}{
		{"pod-bound", ok, Identity{Namespace: "team-a", ServiceAccount: "fn", Pod: "fn-1", PodUID: "uid-fn-1"}},
		{"also other audiences", with(func(s *authenticationv1.TokenReviewStatus) { s.Audiences = []string{"x", pushapi.Audience} }),
			Identity{Namespace: "team-a", ServiceAccount: "fn", Pod: "fn-1", PodUID: "uid-fn-1"}},
		{"not authenticated", with(func(s *authenticationv1.TokenReviewStatus) { s.Authenticated = false }), Identity{}},
		{"no audiences", with(func(s *authenticationv1.TokenReviewStatus) { s.Audiences = nil }), Identity{}},
		{"other audience", with(func(s *authenticationv1.TokenReviewStatus) { s.Audiences = []string{"https://kubernetes.default.svc"} }), Identity{}},
		{"a user", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Username = "alice" }), Identity{}},
		{"a node", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Username = "system:node:n1" }), Identity{}},
		{"no account name", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Username = "system:serviceaccount:team-a" }), Identity{}},
		{"empty account name", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Username = "system:serviceaccount:team-a:" }), Identity{}},
		{"empty namespace", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Username = "system:serviceaccount::fn" }), Identity{}},
		{"extra segment", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Username = "system:serviceaccount:team-a:fn:x" }), Identity{}},
		{"bad namespace", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Username = "system:serviceaccount:Team_A:fn" }), Identity{}},
		{"prefix case", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Username = "System:ServiceAccount:team-a:fn" }), Identity{}},
		{"not bound to a pod", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Extra = nil }), Identity{}},
		{"no pod uid", with(func(s *authenticationv1.TokenReviewStatus) { delete(s.User.Extra, extraPodUID) }), Identity{}},
		{"two pod names", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Extra[extraPodName] = []string{"fn-1", "fn-2"} }), Identity{}},
		{"empty pod name", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Extra[extraPodName] = []string{""} }), Identity{}},
		{"bad pod name", with(func(s *authenticationv1.TokenReviewStatus) { s.User.Extra[extraPodName] = []string{"../x"} }), Identity{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := identityFrom(tc.st)
			if tc.want == (Identity{}) {
				if !errors.Is(err, ErrInvalidCredential) {
					t.Fatalf("got %+v, %v; want ErrInvalidCredential", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestReviewerCache: a success is reused for TTL, never past the token's
// exp; a refusal for the negative TTL (at most 5 s); a failed review not
// at all.
func TestReviewerCache(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	valid, soon := jws("valid", time.Time{}), jws("soon", clock.Now().Add(10*time.Second))
	refused, flaky := jws("refused", time.Time{}), jws("flaky", time.Time{})
	f := &fakeReviews{t: t, answer: func(token string) (authenticationv1.TokenReviewStatus, error) {
		switch token {
		case valid, soon:
			return podBound("a", "fn", "p1"), nil
		case flaky:
			return authenticationv1.TokenReviewStatus{}, errors.New("etcdserver: request timed out")
		}
		return authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}, nil
	}}
	r := NewTokenReviewer(f, ReviewOptions{Now: clock.Now, NegativeTTL: time.Hour /* capped to 5 s */})
	auth := func(token string) error {
		_, err := r.Authenticate(t.Context(), token)
		return err
	}
	step := func(what string, token string, wantErr error, wantCalls int) {
		t.Helper()
		if err := auth(token); !errors.Is(err, wantErr) {
			t.Fatalf("%s: got %v, want %v", what, err, wantErr)
		}
		if got := f.count(); got != wantCalls {
			t.Fatalf("%s: %d reviews, want %d", what, got, wantCalls)
		}
	}
	step("valid", valid, nil, 1)
	step("valid again", valid, nil, 1)
	step("soon", soon, nil, 2)
	step("refused", refused, ErrInvalidCredential, 3)
	step("refused again", refused, ErrInvalidCredential, 3)
	step("flaky", flaky, ErrReviewFailed, 4)
	step("flaky again: not cached", flaky, ErrReviewFailed, 5)

	clock.Advance(MaxNegativeTTL)
	step("refused after the negative TTL", refused, ErrInvalidCredential, 6)
	step("valid within TTL", valid, nil, 6)
	clock.Advance(6 * time.Second) // soon has expired
	step("soon after its exp", soon, nil, 7)
	clock.Advance(DefaultReviewTTL)
	step("valid after TTL", valid, nil, 8)
}

// TestReviewerBounds: the caches hold at most MaxEntries; what is not a
// JWS never reaches the API server.
func TestReviewerBounds(t *testing.T) {
	t.Parallel()
	f := &fakeReviews{t: t, answer: func(string) (authenticationv1.TokenReviewStatus, error) {
		return podBound("a", "fn", "p1"), nil
	}}
	r := NewTokenReviewer(f, ReviewOptions{MaxEntries: 2})
	for i := range 5 {
		if _, err := r.Authenticate(t.Context(), jws(fmt.Sprint(i), time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.good.len(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
	if _, err := r.Authenticate(t.Context(), jws("0", time.Time{})); err != nil || f.count() != 6 {
		t.Errorf("the oldest entry: got %v after %d reviews, want a new review (6)", err, f.count())
	}
	for _, garbage := range []string{"", "x", "a.b", "a.b.c", "e30.e30", "e30.e30.", "e30.e30.e30.e30", "W10.e30.c2ln", "e30.e30.c2ln!"} {
		if _, err := r.Authenticate(t.Context(), garbage); !errors.Is(err, ErrInvalidCredential) {
			t.Errorf("%q: got %v, want ErrInvalidCredential", garbage, err)
		}
	}
	if f.count() != 6 {
		t.Errorf("%d reviews, want 6: garbage was sent to the API server", f.count())
	}
}

// TestReviewerDedup: concurrent requests with one token send one review;
// a caller that leaves does not cancel it for the others.
func TestReviewerDedup(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := &fakeReviews{t: t, gate: make(chan struct{}), answer: func(string) (authenticationv1.TokenReviewStatus, error) {
			return podBound("a", "fn", "p1"), nil
		}}
		r := NewTokenReviewer(f, ReviewOptions{})
		token := jws("shared", time.Time{})
		leaving, leave := context.WithCancel(t.Context())
		errs := make(chan error, 11)
		go func() {
			_, err := r.Authenticate(leaving, token)
			errs <- err
		}()
		for range 10 {
			go func() {
				id, err := r.Authenticate(t.Context(), token)
				if err == nil && id.Pod != "p1" {
					err = fmt.Errorf("identity %+v", id)
				}
				errs <- err
			}()
		}
		synctest.Wait() // every caller waits on the one review
		if got := f.count(); got != 1 {
			t.Fatalf("%d reviews in flight, want 1", got)
		}
		leave()
		if err := <-errs; !errors.Is(err, ErrReviewFailed) {
			t.Fatalf("the caller that left: got %v, want ErrReviewFailed", err)
		}
		close(f.gate)
		for range 10 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if got := f.count(); got != 1 {
			t.Fatalf("%d reviews, want 1", got)
		}
	})
}

// TestReviewerConcurrency: at most MaxConcurrent reviews are in flight;
// one waiting longer than Timeout for a slot fails (503, not 401).
func TestReviewerConcurrency(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := &fakeReviews{t: t, gate: make(chan struct{}), answer: func(string) (authenticationv1.TokenReviewStatus, error) {
			return podBound("a", "fn", "p1"), nil
		}}
		r := NewTokenReviewer(f, ReviewOptions{MaxConcurrent: 2, Timeout: time.Second})
		errs := make(chan error, 3)
		for i := range 3 {
			go func() {
				_, err := r.Authenticate(t.Context(), jws(fmt.Sprint(i), time.Time{}))
				errs <- err
			}()
		}
		synctest.Wait()
		if got := f.count(); got != 2 {
			t.Fatalf("%d reviews in flight, want 2", got)
		}
		// All three time out (the fake clock moves once all are blocked):
		// the two in flight and the one waiting for a slot.
		for range 3 {
			if err := <-errs; !errors.Is(err, ErrReviewFailed) {
				t.Fatalf("got %v, want ErrReviewFailed", err)
			}
		}
		close(f.gate)
	})
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header []string
		want   string // "": no credential
	}{
		{"bearer", []string{"Bearer abc.def.ghi"}, "abc.def.ghi"},
		{"scheme in lower case", []string{"bearer abc"}, "abc"},
		{"scheme in upper case", []string{"BEARER abc"}, "abc"},
		{"none", nil, ""},
		{"empty", []string{""}, ""},
		{"scheme only", []string{"Bearer"}, ""},
		{"empty token", []string{"Bearer "}, ""},
		{"two spaces", []string{"Bearer  abc"}, ""},
		{"tab", []string{"Bearer\tabc"}, ""},
		{"space inside", []string{"Bearer abc def"}, ""},
		{"basic", []string{"Basic YTpi"}, ""},
		{"two headers", []string{"Bearer abc", "Bearer abc"}, ""},
		{"too long", []string{"Bearer " + string(make([]byte, maxTokenBytes+1))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{Header: http.Header{"Authorization": tc.header}}
			got, ok := bearerToken(r)
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("got %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	exp := time.Unix(1900000000, 0)
	if got := tokenExpiry(jws("x", exp)); !got.Equal(exp) {
		t.Errorf("got %v, want %v", got, exp)
	}
	for _, token := range []string{jws("x", time.Time{}), "a.b", "e30.!.e30", "e30.eyJleHAiOiJ4In0.e30"} {
		if got := tokenExpiry(token); !got.IsZero() {
			t.Errorf("%q: got %v, want none", token, got)
		}
	}
}
