package atomicwriter

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteSwapsData(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, map[string]string{"config.yaml": "one"}); err != nil {
		t.Fatal(err)
	}
	first, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := Write(dir, map[string]string{"config.yaml": "two"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil || string(got) != "two" {
		t.Fatalf("got %q (%v), want two", got, err)
	}
	second, _ := os.Readlink(filepath.Join(dir, "..data"))
	if first == second {
		t.Fatalf("got the same payload dir %q twice, want a new one per update", first)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Fatalf("old payload dir %s still exists", first)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "config.yaml")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("config.yaml is not a symlink through ..data")
	}
}
