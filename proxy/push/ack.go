package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/authgate/authgate/internal/pushapi"
)

// ackTimeout bounds one acknowledgement POST.
const ackTimeout = 5 * time.Second

// errAckPermanent marks an ack that retrying cannot help: larger than
// pushapi.MaxAckBytes, or refused as malformed (a 4xx other than 401, 403,
// 408 and 429). The next change of what is enforced sends a new one.
var errAckPermanent = errors.New("ack not retried")

// ackLoop sends the acknowledgements of one stream, one at a time, until
// ctx (the stream's) is done. Requests coalesce: each POST reports what is
// enforced when it is sent. A failed POST is retried with backoff, or at
// once when a new request comes.
func (c *Client) ackLoop(ctx context.Context, rt http.RoundTripper) {
	bo := c.newBackoff()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.acks:
		case <-retry:
		}
		retry = nil
		err := c.sendAck(ctx, rt)
		switch {
		case err == nil:
			bo.reset()
		case ctx.Err() != nil:
			return
		case errors.Is(err, errAckPermanent):
			c.m.acks.WithLabelValues(resultError).Inc()
			c.log.Error("push acknowledgement not sent", slog.String("error", err.Error()))
		default:
			c.m.acks.WithLabelValues(resultError).Inc()
			wait := bo.next()
			c.log.Warn("push acknowledgement failed; retrying", slog.String("error", err.Error()), slog.Duration("retry_in", wait))
			retry = time.After(wait)
		}
	}
}

// sendAck POSTs what the Applier enforces now; nothing when nothing is
// loaded.
func (c *Client) sendAck(ctx context.Context, rt http.RoundTripper) error {
	ack, ok := c.enforced()
	if !ok {
		return nil
	}
	body, err := json.Marshal(ack)
	if err != nil {
		return fmt.Errorf("encode ack: %w", err)
	}
	if len(body) > pushapi.MaxAckBytes {
		return fmt.Errorf("%w: %d bytes, more than the %d allowed", errAckPermanent, len(body), pushapi.MaxAckBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(pushapi.AckPath).String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("ack request: %w", err)
	}
	token, err := c.authorize(req)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		re := newResponseError(resp, token)
		if permanentStatus(resp.StatusCode) {
			return fmt.Errorf("%w: ack: %w: %q", errAckPermanent, re, re.body)
		}
		return fmt.Errorf("ack: %w: %q", re, re.body)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyLogBytes))
	c.m.acks.WithLabelValues(resultOK).Inc()
	c.log.Debug("push acknowledgement sent", slog.Int64("revision", ack.Revision), slog.String("config_hash", ack.Hash),
		slog.String("source", ack.Source))
	return nil
}

// permanentStatus reports a refusal of the ack itself, which the same ack
// would meet again.
func permanentStatus(code int) bool {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return code >= 400 && code < 500
}
