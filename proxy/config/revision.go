package config

import (
	"bytes"
	"strconv"
)

// The revision line: the controller writes a bundle's revision
// (ProxyConfig.Revision) as its first line, "revision: N", so the push
// channel's server and client can read it without decoding the bundle
// (a large one takes a quarter of a second to decode). Parse reads the
// same field like any other.

const revisionPrefix = "revision: "

// StampRevision returns data (a ProxyConfig YAML document, a block
// mapping) with its first line set to revision rev: a revision line data
// starts with is replaced; rev 0 removes it.
func StampRevision(data []byte, rev int64) []byte {
	data = withoutRevisionLine(data)
	if rev == 0 {
		return data
	}
	out := make([]byte, 0, len(revisionPrefix)+20+1+len(data))
	out = append(out, revisionPrefix...)
	out = strconv.AppendInt(out, rev, 10)
	out = append(out, '\n')
	return append(out, data...)
}

// HeadRevision reads the revision line data starts with: 0 when it has
// none (a bundle written by hand) or it is not a non-negative integer.
func HeadRevision(data []byte) int64 {
	if !bytes.HasPrefix(data, []byte(revisionPrefix)) {
		return 0
	}
	line := data[len(revisionPrefix):]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// withoutRevisionLine is data without the revision line it starts with.
func withoutRevisionLine(data []byte) []byte {
	if !bytes.HasPrefix(data, []byte(revisionPrefix)) {
		return data
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[i+1:]
	}
	return nil
}
