// Package atomicwriter projects files into a directory the way the
// kubelet projects a ConfigMap into a pod's volume: every update writes a
// new timestamped directory, atomically swaps the ..data symlink to it, and
// each file is a symlink through ..data. The cluster demo uses it to hand
// the rendered bundle to a proxy as a pod would see it (envtest runs no
// kubelet), and tests use it to check the proxy reloads exactly that.
package atomicwriter

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Write projects files (name → content) into dir the way the
// kubelet's atomic writer does. Files no longer present are removed.
func Write(dir string, files map[string]string) error {
	ts := filepath.Join(dir, fmt.Sprintf("..%s", time.Now().UTC().Format("2006_01_02_15_04_05.000000000")))
	if err := os.Mkdir(ts, 0o750); err != nil {
		return fmt.Errorf("create payload dir: %w", err)
	}
	names := make([]string, 0, len(files))
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return fmt.Errorf("symlink ..data_tmp: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return fmt.Errorf("swap ..data: %w", err)
	}
	for _, name := range names {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				return fmt.Errorf("symlink %s: %w", name, err)
			}
		}
	}
	if old != "" && old != filepath.Base(ts) {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}
