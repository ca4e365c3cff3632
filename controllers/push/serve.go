package push

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of the HTTP server Serve runs. There is no WriteTimeout: a
// stream lives for hours; each write is bounded by Options.WriteTimeout.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 32 << 10
	// HTTP/2 PINGs find a peer that vanished without closing the
	// connection (a deleted pod, a partition).
	sendPingTimeout = 30 * time.Second
	pingTimeout     = 15 * time.Second
	// ShutdownGrace bounds Serve's shutdown once ctx is done.
	ShutdownGrace = 5 * time.Second
)

// Serve listens on addr and serves Handler over HTTP/2 with TLS until ctx
// is done; then it closes every stream and shuts the server down within
// ShutdownGrace. It fits controller-runtime's manager.RunnableFunc.
func (s *Server) Serve(ctx context.Context, addr string, tlsConfig *tls.Config) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("push: listen: %w", err)
	}
	return s.ServeListener(ctx, ln, tlsConfig)
}

// ServeListener is Serve on a listener it closes.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	if tlsConfig == nil || (len(tlsConfig.Certificates) == 0 && tlsConfig.GetCertificate == nil && tlsConfig.GetConfigForClient == nil) {
		ln.Close()
		return errors.New("push: serve: the TLS configuration has no certificate")
	}
	srv := s.httpServer(tlsConfig)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("push: serve: %w", err)
	case <-ctx.Done():
	}
	s.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("push: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("push: serve: %w", err)
	}
	return nil
}

func (s *Server) httpServer(tlsConfig *tls.Config) *http.Server {
	cfg := tlsConfig.Clone()
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	cfg.NextProtos = []string{"h2"}
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	return &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         cfg,
		Protocols:         &protocols,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		HTTP2:             &http.HTTP2Config{SendPingTimeout: sendPingTimeout, PingTimeout: pingTimeout},
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}
