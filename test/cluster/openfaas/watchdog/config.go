package watchdog

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the watchdog's configuration, read from the environment by
// FromEnv the way of-watchdog's config.New reads it (config/config.go).
type Config struct {
	// Port is env port (default 8080). An unparsable value is 0, as in the
	// original (strconv.Atoi's result is used whatever its error).
	Port int
	// ListenHost is not in the original, which listens on every interface
	// (":port"); empty keeps that. Tests set 127.0.0.1.
	ListenHost string
	// MetricsPort is fixed at 8081 in the original; tests set 0.
	MetricsPort int

	ReadTimeout         time.Duration // read_timeout, default 30s
	WriteTimeout        time.Duration // write_timeout, default 30s
	ExecTimeout         time.Duration // exec_timeout, default 30s
	HealthcheckInterval time.Duration // healthcheck_interval, default write_timeout

	FunctionProcess string // fprocess, overridden by function_process
	UpstreamURL     string // upstream_url, overridden by http_upstream_url
	Mode            string // mode; only "http" is reproduced
	SuppressLock    bool   // suppress_lock: "true" or "1"
	BufferHTTPBody  bool   // buffer_http or http_buffer_req_body: "true" or "1"
	MaxInflight     int    // max_inflight, 0 = no limit
	PrefixLogs      bool   // prefix_logs, default true (strconv.ParseBool)
	LogBufferSize   int    // log_buffer_size, default bufio.MaxScanTokenSize
	ReadyPath       string // ready_path: /_/ready is answered by the function at this path
	LogCallID       bool   // log_callid: "1" or strconv.ParseBool

	// LockPath is os.TempDir()/.lock in the original; FromEnv sets that.
	LockPath string
}

// Errors FromEnv returns, with the original's messages (ErrNoUpstream is a
// log.Fatal there, capitalised).
var (
	ErrWriteTimeout = errors.New("HTTP write timeout must be over 0s")
	ErrNoProcess    = errors.New(`provide a "function_process" or "fprocess" environmental variable for your function`)
	ErrNoUpstream   = errors.New(`for "mode=http" you must specify a valid URL for "http_upstream_url"`)
)

// FromEnv reads env (KEY=value entries, as os.Environ) into a Config.
func FromEnv(env []string) (Config, error) {
	const defaultTimeout = 30 * time.Second
	m := mapEnv(env)
	c := Config{
		Port:            getInt(m, "port", 8080),
		MetricsPort:     8081,
		ReadTimeout:     getDuration(m, "read_timeout", defaultTimeout),
		WriteTimeout:    getDuration(m, "write_timeout", defaultTimeout),
		ExecTimeout:     getDuration(m, "exec_timeout", defaultTimeout),
		UpstreamURL:     first(m, "http_upstream_url", "upstream_url"),
		FunctionProcess: first(m, "function_process", "fprocess"),
		Mode:            m["mode"],
		SuppressLock:    getBool(m, "suppress_lock"),
		BufferHTTPBody:  getBool(m, "buffer_http") || getBool(m, "http_buffer_req_body"),
		MaxInflight:     getInt(m, "max_inflight", 0),
		PrefixLogs:      true,
		LogBufferSize:   bufio.MaxScanTokenSize,
		ReadyPath:       m["ready_path"],
		LockPath:        filepath.Join(os.TempDir(), ".lock"),
	}
	if v, ok := m["prefix_logs"]; ok {
		if b, err := strconv.ParseBool(v); err == nil {
			c.PrefixLogs = b
		}
	}
	c.HealthcheckInterval = c.WriteTimeout
	if v, ok := m["healthcheck_interval"]; ok {
		c.HealthcheckInterval = parseIntOrDuration(v, c.WriteTimeout)
	}
	if v, ok := m["log_buffer_size"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, fmt.Errorf("invalid log_buffer_size value: %s, error: %w", v, err)
		}
		c.LogBufferSize = n
	}
	if v, ok := m["log_callid"]; ok {
		c.LogCallID = v == "1"
		if !c.LogCallID {
			c.LogCallID, _ = strconv.ParseBool(v)
		}
	}
	return c, c.validate()
}

// validate is the original's checks in its order, then this reproduction's
// own: only mode=http, and an upstream URL (the original exits with
// log.Fatal when the http handler is built without one).
func (c Config) validate() error {
	if c.WriteTimeout == 0 {
		return ErrWriteTimeout
	}
	if c.FunctionProcess == "" {
		return ErrNoProcess
	}
	if c.Mode != "http" {
		return fmt.Errorf("mode %q: this reproduction has only mode=http (the original defaults to streaming)", c.Mode)
	}
	if c.UpstreamURL == "" {
		return ErrNoUpstream
	}
	return nil
}

// process splits FunctionProcess on single spaces, as the original does (no
// quoting; repeated spaces make empty arguments).
func (c Config) process() (string, []string) {
	parts := strings.Split(c.FunctionProcess, " ")
	return parts[0], parts[1:]
}

func mapEnv(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		if i := strings.Index(kv, "="); i > 0 {
			m[kv[:i]] = kv[i+1:]
		}
	}
	return m
}

// first returns the value of the first key present.
func first(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return ""
}

func getDuration(m map[string]string, key string, def time.Duration) time.Duration {
	if v, ok := m[key]; ok {
		return parseIntOrDuration(v, def)
	}
	return def
}

// parseIntOrDuration reads whole seconds, else a Go duration, else fallback.
func parseIntOrDuration(v string, fallback time.Duration) time.Duration {
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fallback
	}
	return d
}

func getInt(m map[string]string, key string, def int) int {
	if v, ok := m[key]; ok {
		n, _ := strconv.Atoi(v)
		return n
	}
	return def
}

func getBool(m map[string]string, key string) bool {
	return m[key] == "true" || m[key] == "1"
}
