// Package serve runs the HTTP servers of authgate's local tools (the demo,
// the dev issuer, the echo function) until their context ends.
package serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Until serves h on ln until ctx is done, then shuts the server down
// gracefully (at most 5 s).
func Until(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
