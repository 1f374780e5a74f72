package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profile is a CPU profile of the child being taken.
type profile struct {
	path string
	done chan error
}

// startProfile starts a CPU profile of d over the next -profile-for, into
// -profile/<scenario>-<run>-<span>.pprof; nil when no profile was asked for.
func (r *runner) startProfile(ctx context.Context, d *daemon, res *result, span string) *profile {
	if r.o.profile == "" || d.debugAddr == "" {
		return nil
	}
	p := &profile{
		path: filepath.Join(r.o.profile, fmt.Sprintf("%s-%d-%s.pprof", res.scenario, res.run, span)),
		done: make(chan error, 1),
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", d.debugAddr, int(r.o.profileFor/time.Second))
	go func() { p.done <- fetchProfile(ctx, url, p.path) }()
	return p
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("%s: %s %s", url, res.Status, msg)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// wait waits for the profile and reports where it is.
func (p *profile) wait(res *result) {
	if p == nil {
		return
	}
	if err := <-p.done; err != nil {
		res.row("profile", "failed: %v", err)
		return
	}
	res.row("profile", "%s (go tool pprof -top %s)", p.path, p.path)
}
