// Package labels reads the workload's own labels: from the Kubernetes
// downward API file format (key="quoted value" per line) or from a flag.
package labels

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// maxFileBytes caps a labels file.
const maxFileBytes = 1 << 20

// Parse reads the downward API format: one `key="value"` per line, the
// value a Go-quoted string. Blank lines are ignored.
func Parse(data []byte) (map[string]string, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("labels file larger than %d bytes", maxFileBytes)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxFileBytes)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		key, quoted, ok := strings.Cut(text, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("line %d: want key=\"value\"", line)
		}
		val, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, fmt.Errorf("line %d: value of %q is not a quoted string: %w", line, key, err)
		}
		out[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return out, nil
}

// ReadFile parses a downward API labels file.
func ReadFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read labels file: %w", err)
	}
	return Parse(data)
}

// ParseFlag reads "k=v,k2=v2".
func ParseFlag(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", kv)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}
