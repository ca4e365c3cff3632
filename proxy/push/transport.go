package push

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Limits and timeouts of the connection.
const (
	maxCABytes    = 1 << 20
	maxTokenBytes = 64 << 10
	// maxBodyLogBytes bounds the part of an error response that is logged.
	maxBodyLogBytes = 512

	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 15 * time.Second
	idleConnTimeout       = 90 * time.Second
	maxResponseHeaderSize = 64 << 10
)

// newTransport builds the transport of one connection: TLS 1.2+ verified
// against the CA (the file as it is now, or ca when caFile is empty),
// HTTP/2 with PING liveness. It uses no proxy from the environment: the
// push server is a cluster Service.
func newTransport(caFile string, ca []byte, serverName string, pingTimeout time.Duration) (*http.Transport, error) {
	pemData, where := ca, "the CA given"
	if caFile != "" {
		var err error
		if pemData, err = readCapped(caFile, maxCABytes); err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		where = "CA file " + caFile
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("%s holds no PEM certificate", where)
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: dialer.DialContext,
		TLSClientConfig: &tls.Config{
			RootCAs:    pool,
			MinVersion: tls.VersionTLS12,
			ServerName: serverName,
		},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ResponseHeaderTimeout:  responseHeaderTimeout,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderSize,
		// A stream must reach the decoder as it is written.
		DisableCompression: true,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: pingTimeout,
			PingTimeout:     pingTimeout,
		},
	}, nil
}

// readToken reads the bearer token. Errors name the file, never the
// content.
func readToken(path string) (string, error) {
	data, err := readCapped(path, maxTokenBytes)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	for i := range len(token) {
		if c := token[i]; c < 0x21 || c > 0x7e {
			return "", fmt.Errorf("token file %s holds a byte not allowed in a bearer token at offset %d", path, i)
		}
	}
	return token, nil
}

// readCapped reads a whole file of at most limit bytes.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// responseError is a response other than the one expected.
type responseError struct {
	status     int
	proto      string
	body       string        // bounded, the token removed
	retryAfter time.Duration // the server's Retry-After; 0: none
}

func (e *responseError) Error() string {
	if e.status == http.StatusOK {
		return fmt.Sprintf("server answered over %s; the push channel requires HTTP/2 (its PING detects a dead connection)", e.proto)
	}
	return fmt.Sprintf("server answered %d %s", e.status, http.StatusText(e.status))
}

// unauthorized reports a 401 or 403: a token or RBAC problem that a quick
// retry does not fix.
func unauthorized(err error) bool {
	var re *responseError
	return errors.As(err, &re) && (re.status == http.StatusUnauthorized || re.status == http.StatusForbidden)
}

// newResponseError reads at most maxBodyLogBytes of resp's body for the
// log, removing the token should the server echo it.
func newResponseError(resp *http.Response, token string) *responseError {
	// Read past the bound by the token's length, so a token starting
	// inside the bound is whole when it is removed.
	data, _ := io.ReadAll(io.LimitReader(resp.Body, int64(maxBodyLogBytes+len(token))))
	body := string(data)
	if token != "" {
		body = strings.ReplaceAll(body, token, "[redacted]")
	}
	if len(body) > maxBodyLogBytes {
		body = body[:maxBodyLogBytes]
	}
	body = strings.ToValidUTF8(body, "\uFFFD")
	return &responseError{status: resp.StatusCode, proto: resp.Proto, body: body, retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
}

// retryAfter reads a Retry-After of delay seconds (what the push server
// sends); 0 when absent or not a positive number.
func retryAfter(v string) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}

// retryAfterOf is the Retry-After of a refused watch; 0 when none.
func retryAfterOf(err error) time.Duration {
	var re *responseError
	if errors.As(err, &re) {
		return re.retryAfter
	}
	return 0
}
