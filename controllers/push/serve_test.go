package push_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/authgate/authgate/controllers/push"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/test/testca"
	"github.com/authgate/authgate/test/wait"
)

// TestServe: ServeListener serves HTTP/2 over TLS only, and ends its
// streams and returns promptly when its context ends.
func TestServe(t *testing.T) {
	t.Parallel()
	ca := testca.New(t)
	acks := push.NewAcks()
	defer acks.Close()
	srv := push.NewServer(push.Options{Auth: sidecars, Read: newBundles(map[string][]byte{"a": bundle("a", 1)}).read, Acks: acks})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- srv.ServeListener(ctx, ln, &tls.Config{Certificates: []tls.Certificate{ca.ServerCertificate(t)}, MinVersion: tls.VersionTLS12})
	}()
	base := "https://" + ln.Addr().String()

	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	defer h2.CloseIdleConnections()
	resp, err := (&http.Client{Transport: h2}).Do(mustRequest(t, base+pushapi.WatchPath, "Bearer token-a1"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("got %s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
	}
	w := newWatcher(t, resp)
	w.expect(t, bundle("a", 1), 1)

	h1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}}
	defer h1.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: h1}).Do(mustRequest(t, base+pushapi.WatchPath, "Bearer token-a1")); err == nil {
		resp.Body.Close()
		t.Fatalf("HTTP/1.1: got %s, want no connection", resp.Status)
	}

	cancel()
	if err := w.ended(t); err == nil {
		t.Error("stream ended without an error")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("ServeListener: %v", err)
		}
	case <-time.After(push.ShutdownGrace + wait.DefaultTimeout):
		t.Fatal("ServeListener did not return")
	}
}

func TestServeNeedsCertificate(t *testing.T) {
	t.Parallel()
	srv := push.NewServer(push.Options{Auth: sidecars, Read: newBundles(nil).read, Acks: push.NewAcks()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ServeListener(t.Context(), ln, &tls.Config{MinVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("served without a certificate")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener is still open")
	}
}

func TestNewServerValidates(t *testing.T) {
	t.Parallel()
	for _, o := range []push.Options{
		{Read: newBundles(nil).read, Acks: push.NewAcks()},
		{Auth: sidecars, Acks: push.NewAcks()},
		{Auth: sidecars, Read: newBundles(nil).read},
		{Auth: sidecars, Read: newBundles(nil).read, Acks: push.NewAcks(), MaxStreamsPerNamespace: -1},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: valid, want an error", o)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("NewServer accepted options without Auth")
		}
	}()
	push.NewServer(push.Options{})
}
