package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// MaxFileBytes caps the size of a config file.
const MaxFileBytes = 16 << 20

// Parse decodes YAML or JSON strictly (unknown fields are errors), applies
// defaults and validates. It never returns a config that failed validation.
func Parse(data []byte) (*ProxyConfig, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("config is %d bytes, more than the %d allowed", len(data), MaxFileBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("config is empty")
	}
	if multipleDocuments(data) {
		return nil, errors.New("config holds more than one YAML document; only one ProxyConfig is allowed")
	}
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(jsonData))
	dec.DisallowUnknownFields()
	var c ProxyConfig
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode config: more than one document")
	}
	c.Default()
	if errs := c.Validate(); len(errs) > 0 {
		return nil, errs
	}
	return &c, nil
}

// Load reads and parses a config file.
func Load(path string) (*ProxyConfig, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	data, err := readCapped(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read config %s: %w", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, data, fmt.Errorf("config %s: %w", path, err)
	}
	return c, data, nil
}

// Hash is the hex SHA-256 of a config's bytes, used to report which
// configuration is active.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// multipleDocuments reports a "---" separator after content. A separator
// always starts at column 0; block scalars (Rego sources) are indented, so
// their lines never match.
func multipleDocuments(data []byte) bool {
	content := false
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if bytes.Equal(line, []byte("---")) || bytes.HasPrefix(line, []byte("--- ")) {
			if content {
				return true
			}
			continue
		}
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) > 0 && trimmed[0] != '#' {
			content = true
		}
	}
	return false
}
