package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// request is one pre-rendered HTTP/1.1 keep-alive request. The generator
// writes the same bytes every time: no per-request allocation, no
// net/http client machinery, so it takes as little of the shared CPUs as
// possible away from the process being measured.
type request struct {
	addr string
	raw  []byte
}

func newRequest(addr, path string, headers [][2]string) request {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadbench\r\n", path, addr)
	for _, h := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n")
	return request{addr: addr, raw: b.Bytes()}
}

// conn is one keep-alive connection speaking just enough HTTP/1.1 to read
// responses with Content-Length or chunked bodies.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &conn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (c *conn) close() { _ = c.c.Close() }

// roundTrip sends r and reads the whole response, returning its status.
func (c *conn) roundTrip(r request) (int, error) {
	if _, err := c.c.Write(r.raw); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	return c.readResponse()
}

var errMalformed = errors.New("malformed response")

// readResponse reads one response and discards its body. A response that
// asks to close the connection is an error: the generator only measures
// keep-alive traffic.
func (c *conn) readResponse() (int, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	length, chunked, closing := int64(-1), false, false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("read header: %w", err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil {
				return 0, fmt.Errorf("%w: content-length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = c.discardChunked()
	case length > 0:
		_, err = c.br.Discard(int(length))
	case length < 0:
		err = fmt.Errorf("%w: no length", errMalformed)
	}
	if err != nil {
		return 0, err
	}
	if closing {
		return status, errors.New("server closed the keep-alive connection")
	}
	return status, nil
}

func (c *conn) discardChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("read chunk size: %w", err)
		}
		sz, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(sz), 16, 64)
		if err != nil {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			// Trailers, then the final CRLF.
			for {
				t, err := c.br.ReadSlice('\n')
				if err != nil {
					return fmt.Errorf("read trailer: %w", err)
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := io.CopyN(io.Discard, c.br, n+2); err != nil {
			return fmt.Errorf("read chunk: %w", err)
		}
	}
}
