package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/push"
	"github.com/authgate/authgate/proxy/reload"
)

// PushOptions connect the proxy to the controller's push channel
// (proxy/push): the namespace's bundle streamed as it changes, applied
// through the same path as a file reload; the mounted file stays the
// fallback.
type PushOptions struct {
	// URL of the controller's push Service (https).
	URL string
	// CA is the PEM CA bundle of the controller's serving certificate.
	CA []byte
	// ServerName is the name that certificate is verified for; empty:
	// URL's host.
	ServerName string
	// TokenFile is the projected ServiceAccount token of audience
	// pushapi.Audience.
	TokenFile string
}

// newPushClient builds the push client over the loader (New makes the
// loader tell it of every activation, so file reloads are acknowledged
// too).
func (a *App) newPushClient(o *PushOptions) (*push.Client, error) {
	c, err := push.New(push.Options{
		URL: o.URL, CA: o.CA, ServerName: o.ServerName, TokenFile: o.TokenFile,
		Applier: loaderApplier{a.loader}, Metrics: push.NewMetrics(a.registry), Logger: a.logger.With("component", "push"),
	})
	if err != nil {
		return nil, fmt.Errorf("push channel: %w", err)
	}
	return c, nil
}

// loaderApplier is the reload.Loader as the push client's Applier.
type loaderApplier struct{ l *reload.Loader }

func (p loaderApplier) Apply(ctx context.Context, data []byte) (push.Outcome, error) {
	err := p.l.LoadData(ctx, data)
	switch {
	case err == nil:
		return push.Applied, nil
	case errors.Is(err, reload.ErrUnchanged):
		return push.Unchanged, nil
	case errors.Is(err, reload.ErrStale):
		return push.Stale, nil
	}
	return push.Rejected, err
}

func (p loaderApplier) Enforced() (pushapi.Ack, bool) {
	e, ok := p.l.Enforced()
	return pushapi.Ack{Revision: e.Revision, Hash: e.Hash, Policies: e.Policies, Source: e.Source}, ok
}
