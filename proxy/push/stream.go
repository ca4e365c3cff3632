package push

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
)

// maxUpdateBytes bounds one Update on the wire: a bundle of
// config.MaxFileBytes in base64, and room for the envelope.
var maxUpdateBytes = int64(base64.StdEncoding.EncodedLen(config.MaxFileBytes)) + 64<<10

var (
	// errStreamClosed: the server ended the stream cleanly.
	errStreamClosed = errors.New("server closed the stream")
	// errCorrupt: an update whose hash or revision does not match its data.
	errCorrupt = errors.New("corrupt update")
	// errUpdateTooLarge: an update larger than maxUpdateBytes.
	errUpdateTooLarge = errors.New("update larger than the largest bundle allowed")
)

// read decodes and applies updates from the watch body until it ends,
// fails, or delivers a corrupt update. It returns how many intact updates
// it received. ctx is Run's: the Applier may keep what it starts with it.
func (c *Client) read(ctx context.Context, body io.Reader) (int, error) {
	lim := &messageLimit{r: body, max: maxUpdateBytes}
	dec := json.NewDecoder(lim)
	n := 0
	for {
		var u pushapi.Update
		if err := dec.Decode(&u); err != nil {
			if errors.Is(err, io.EOF) {
				return n, errStreamClosed
			}
			return n, fmt.Errorf("read update: %w", err)
		}
		lim.mark = dec.InputOffset()
		if err := verify(u); err != nil {
			c.m.updates.WithLabelValues(outcomeCorrupt).Inc()
			c.log.Error("corrupt update from the push server; dropping the stream",
				slog.Int64("revision", u.Revision), slog.Int("bytes", len(u.Data)), slog.String("error", err.Error()))
			return n, err
		}
		n++
		c.apply(ctx, u)
		if err := ctx.Err(); err != nil {
			return n, err
		}
	}
}

// verify checks that u is what the server meant to send: Hash is
// config.Hash(Data), and Data's own revision (when it can be read; a
// bundle that cannot is the Applier's to reject) is Revision.
func verify(u pushapi.Update) error {
	if got := config.Hash(u.Data); got != u.Hash {
		return fmt.Errorf("%w: revision %d: hash %.80q, data hashes to %s", errCorrupt, u.Revision, u.Hash, got)
	}
	if rev := config.HeadRevision(u.Data); rev != u.Revision {
		return fmt.Errorf("%w: update says revision %d, its data says %d", errCorrupt, u.Revision, rev)
	}
	return nil
}

// apply hands an intact update to the Applier, then counts, logs (never
// the data) and, when it became active, acknowledges it.
func (c *Client) apply(ctx context.Context, u pushapi.Update) {
	c.m.lastUpdate.Set(float64(c.opts.Now().Unix()))
	outcome, err := c.applyUpdate(ctx, u)
	if ctx.Err() != nil && outcome != Applied {
		return // shutting down: whatever failed did so because of it
	}
	attrs := []slog.Attr{
		slog.Int64("revision", u.Revision), slog.String("config_hash", u.Hash), slog.Int("bytes", len(u.Data)),
	}
	switch outcome {
	case Applied:
		c.requestAck()
		c.log.LogAttrs(ctx, slog.LevelInfo, "bundle from the push channel applied", attrs...)
	case Unchanged:
		c.log.LogAttrs(ctx, slog.LevelDebug, "bundle from the push channel is the active one", attrs...)
	case Stale:
		if ack, ok := c.opts.Applier.Enforced(); ok {
			attrs = append(attrs, slog.Int64("enforced_revision", ack.Revision))
		}
		c.log.LogAttrs(ctx, slog.LevelInfo, "bundle from the push channel is not newer than the enforced one; ignored", attrs...)
	default:
		if err == nil {
			err = fmt.Errorf("applier returned outcome %d", int(outcome))
		}
		outcome = Rejected
		attrs = append(attrs, slog.String("error", err.Error()))
		c.log.LogAttrs(ctx, slog.LevelError, "bundle from the push channel rejected; keeping the last good configuration", attrs...)
	}
	c.m.updates.WithLabelValues(outcome.String()).Inc()
}

// messageLimit fails a read once the decoder would hold more than max
// bytes past the end of the last value it decoded, so one huge value
// cannot exhaust memory.
type messageLimit struct {
	r    io.Reader
	max  int64
	read int64 // bytes read from r
	mark int64 // the decoder's offset after its last value
}

func (l *messageLimit) Read(p []byte) (int, error) {
	room := l.mark + l.max - l.read
	if room <= 0 {
		return 0, errUpdateTooLarge
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}
