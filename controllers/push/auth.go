package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/authgate/authgate/internal/pushapi"
)

// Identity is the pod a verified push token was issued to.
type Identity struct {
	Namespace, ServiceAccount, Pod, PodUID string
}

// Authenticator verifies a sidecar's bearer token. Its error wraps
// ErrInvalidCredential (answered 401) or ErrReviewFailed (503).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

var (
	// ErrInvalidCredential means the token is not a pod-bound ServiceAccount
	// token for pushapi.Audience.
	ErrInvalidCredential = errors.New("invalid credential")
	// ErrReviewFailed means the token could not be reviewed (the API server
	// failed or timed out); the client should retry.
	ErrReviewFailed = errors.New("token review failed")
)

// Keys of a pod-bound token's user.extra (set by the API server).
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

const serviceAccountPrefix = "system:serviceaccount:"

// Defaults and bounds of ReviewOptions.
const (
	DefaultReviewTTL         = time.Minute
	MaxNegativeTTL           = 5 * time.Second
	DefaultReviewEntries     = 10000
	DefaultReviewTimeout     = 10 * time.Second
	DefaultConcurrentReviews = 8
)

// ReviewOptions tune a TokenReviewer; the zero value is the defaults.
type ReviewOptions struct {
	// TTL bounds how long a successful review is reused (default
	// DefaultReviewTTL); never beyond the token's own expiry. It is also
	// how long a token of a deleted pod may still be accepted.
	TTL time.Duration
	// NegativeTTL is how long a refused token is refused without asking
	// again (default and maximum MaxNegativeTTL).
	NegativeTTL time.Duration
	// MaxEntries bounds each of the two caches (default
	// DefaultReviewEntries); the oldest entry gives way.
	MaxEntries int
	// Timeout bounds one TokenReview, waiting for a slot included
	// (default DefaultReviewTimeout).
	Timeout time.Duration
	// MaxConcurrent bounds the TokenReviews in flight (default
	// DefaultConcurrentReviews).
	MaxConcurrent int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Metrics counts the reviews; nil counts nothing.
	Metrics *Metrics
}

func (o ReviewOptions) withDefaults() ReviewOptions {
	if o.TTL <= 0 {
		o.TTL = DefaultReviewTTL
	}
	if o.NegativeTTL <= 0 || o.NegativeTTL > MaxNegativeTTL {
		o.NegativeTTL = MaxNegativeTTL
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultReviewEntries
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultReviewTimeout
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultConcurrentReviews
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// TokenReviewer is an Authenticator asking the API server (TokenReview)
// whether a token is a pod-bound ServiceAccount token for
// pushapi.Audience. It caches answers by the token's SHA-256 (successes
// for TTL, refusals for at most MaxNegativeTTL) and sends one review for
// concurrent requests with the same token.
type TokenReviewer struct {
	c     authenticationv1client.TokenReviewInterface
	o     ReviewOptions
	good  *ttlCache[Identity]
	bad   *ttlCache[error]
	group singleflight.Group
	slots chan struct{}
}

// NewTokenReviewer returns a TokenReviewer creating TokenReviews with c.
func NewTokenReviewer(c authenticationv1client.TokenReviewInterface, o ReviewOptions) *TokenReviewer {
	o = o.withDefaults()
	return &TokenReviewer{
		c: c, o: o,
		good:  newTTLCache[Identity](o.MaxEntries),
		bad:   newTTLCache[error](o.MaxEntries),
		slots: make(chan struct{}, o.MaxConcurrent),
	}
}

// Authenticate implements Authenticator.
func (r *TokenReviewer) Authenticate(ctx context.Context, token string) (Identity, error) {
	if !jwsShaped(token) {
		return Identity{}, fmt.Errorf("%w: not a ServiceAccount token", ErrInvalidCredential)
	}
	key := tokenKey(sha256.Sum256([]byte(token)))
	now := r.o.Now()
	if id, ok := r.good.get(key, now); ok {
		return id, nil
	}
	if err, ok := r.bad.get(key, now); ok {
		return Identity{}, err
	}
	// The review runs on for the other waiters when this caller leaves.
	reviewCtx := context.WithoutCancel(ctx)
	ch := r.group.DoChan(hex.EncodeToString(key[:]), func() (any, error) {
		return r.review(reviewCtx, key, token)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Identity{}, res.Err
		}
		return res.Val.(Identity), nil
	case <-ctx.Done():
		return Identity{}, fmt.Errorf("%w: %w", ErrReviewFailed, context.Cause(ctx))
	}
}

// review asks the API server and caches its answer (not its failure).
func (r *TokenReviewer) review(ctx context.Context, key tokenKey, token string) (Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
		r.o.Metrics.review(ResultError)
		return Identity{}, fmt.Errorf("%w: waiting for a review slot: %w", ErrReviewFailed, ctx.Err())
	}
	tr, err := r.c.Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{pushapi.Audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		r.o.Metrics.review(ResultError)
		return Identity{}, fmt.Errorf("%w: %w", ErrReviewFailed, err)
	}
	now := r.o.Now()
	id, err := identityFrom(tr.Status)
	if err != nil {
		r.o.Metrics.review(ResultRefused)
		r.bad.put(key, err, now.Add(r.o.NegativeTTL))
		return Identity{}, err
	}
	r.o.Metrics.review(ResultAuthenticated)
	expires := now.Add(r.o.TTL)
	if exp := tokenExpiry(token); !exp.IsZero() && exp.Before(expires) {
		expires = exp
	}
	if now.Before(expires) {
		r.good.put(key, id, expires)
	}
	return id, nil
}

// identityFrom checks a TokenReview's answer: authenticated, for
// pushapi.Audience, a ServiceAccount, bound to one pod.
func identityFrom(st authenticationv1.TokenReviewStatus) (Identity, error) {
	if !st.Authenticated {
		return Identity{}, fmt.Errorf("%w: not authenticated: %s", ErrInvalidCredential, truncate(st.Error, 200))
	}
	if !slices.Contains(st.Audiences, pushapi.Audience) {
		return Identity{}, fmt.Errorf("%w: not a token for audience %s", ErrInvalidCredential, pushapi.Audience)
	}
	ns, sa, err := splitServiceAccount(st.User.Username)
	if err != nil {
		return Identity{}, err
	}
	pod, okName := single(st.User.Extra[extraPodName])
	uid, okUID := single(st.User.Extra[extraPodUID])
	if !okName || !okUID {
		return Identity{}, fmt.Errorf("%w: the token is not bound to a pod", ErrInvalidCredential)
	}
	if len(validation.IsDNS1123Subdomain(pod)) > 0 || len(uid) > 128 {
		return Identity{}, fmt.Errorf("%w: malformed pod binding", ErrInvalidCredential)
	}
	return Identity{Namespace: ns, ServiceAccount: sa, Pod: pod, PodUID: uid}, nil
}

// splitServiceAccount parses "system:serviceaccount:<namespace>:<name>"
// strictly, as k8s.io/apiserver's serviceaccount.SplitUsername does.
func splitServiceAccount(username string) (ns, sa string, err error) {
	rest, ok := strings.CutPrefix(username, serviceAccountPrefix)
	if !ok {
		return "", "", fmt.Errorf("%w: not a ServiceAccount", ErrInvalidCredential)
	}
	ns, sa, ok = strings.Cut(rest, ":")
	if !ok || strings.Contains(sa, ":") ||
		len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(sa)) > 0 {
		return "", "", fmt.Errorf("%w: malformed ServiceAccount username", ErrInvalidCredential)
	}
	return ns, sa, nil
}

// single is the one non-empty value of vs.
func single(vs authenticationv1.ExtraValue) (string, bool) {
	if len(vs) != 1 || vs[0] == "" {
		return "", false
	}
	return vs[0], true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
