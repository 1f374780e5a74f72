package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a Redis the comparison started for one round: its own
// directory, a free loopback port, and every write fsynced to the
// append-only file before it is acknowledged.
type redisServer struct {
	*process
	addr string
	dir  string
}

// redisArgs are the settings the comparison runs Redis with.
var redisArgs = []string{"--appendonly", "yes", "--appendfsync", "always", "--save", ""}

// startRedis starts redis-server in a new directory under work and waits
// until it answers PING.
func startRedis(ctx context.Context, bin, work, name string) (*redisServer, error) {
	dir, err := os.MkdirTemp(work, name+"-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	args := append([]string{"--bind", "127.0.0.1", "--port", port, "--dir", dir, "--daemonize", "no", "--logfile", ""}, redisArgs...)
	cmd := exec.Command(bin, args...)
	p, err := startProcess("redis-server", cmd, filepath.Join(work, name+".log"))
	if err != nil {
		return nil, err
	}
	r := &redisServer{process: p, addr: addr, dir: dir}
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
	defer c.Close()
	err = p.waitFor(20*time.Second, "answer PING", func() error {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.Ping(pctx).Err()
	})
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// close shuts Redis down (SIGTERM: it flushes and fsyncs its append-only
// file and exits) and removes its directory.
func (r *redisServer) close() error {
	err := r.stop(syscall.SIGTERM, 30*time.Second)
	os.RemoveAll(r.dir)
	return err
}

// redisVersion is what redis-server --version says, shortened.
func redisVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(out))
	if len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return strings.TrimSpace(string(out))
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
