// Package upgradeecho is a function that takes a protocol upgrade (the
// WebSocket handshake's HTTP/1.1 Upgrade, without WebSocket framing) and
// echoes every line over the upgraded connection, and the client for it:
// enough to see that an upgraded stream passes through the proxy and how
// long it lives, with nothing but the standard library.
package upgradeecho

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Handler answers an Upgrade: websocket request with 101 and then writes
// "echo:<line>" for every line it reads, until the client closes. Other
// requests get 400.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo:" + line)
			_ = brw.Flush()
		}
	})
}

// Conn is a client's end of an upgraded connection.
type Conn struct {
	net.Conn
	br *bufio.Reader
}

// Dial opens a connection to addr, sends the upgrade request for path and
// fails t unless the answer is 101. The connection is closed at cleanup and
// has a 60 s deadline.
func Dial(t *testing.T, addr, path string) *Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	_, _ = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: fn\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close() // a 101 has no body: the stream continues on conn
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: got status %d, want 101", resp.StatusCode)
	}
	return &Conn{Conn: conn, br: br}
}

// Echo sends msg as a line and checks that the echo comes back.
func (c *Conn) Echo(msg string) error {
	if _, err := io.WriteString(c.Conn, msg+"\n"); err != nil {
		return err
	}
	got, err := c.br.ReadString('\n')
	if err != nil {
		return err
	}
	if got != "echo:"+msg+"\n" {
		return fmt.Errorf("got %q, want echo:%s", got, msg)
	}
	return nil
}

// ReadLine reads the next line (for a test that expects the connection to
// end: io.EOF).
func (c *Conn) ReadLine() (string, error) { return c.br.ReadString('\n') }
