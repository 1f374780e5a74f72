package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresServer is a PostgreSQL the comparison started for the whole
// run, in a temporary directory, listening on a free loopback port. Each
// River round gets a fresh database in it.
type postgresServer struct {
	*process
	bin  string
	dir  string
	port string
}

// postgresUser is the database superuser initdb creates.
const postgresUser = "bench"

// startPostgres runs initdb and starts postgres from bin (the directory of
// PostgreSQL's programs). PostgreSQL refuses to run as root: as root, both
// run as osUser (bench/setup.sh creates it), otherwise as the current
// user. maxConns is max_connections.
func startPostgres(ctx context.Context, bin, osUser string, maxConns int, work string) (*postgresServer, error) {
	cred, err := postgresCredential(osUser)
	if err != nil {
		return nil, err
	}
	// Not under work: that is root's alone, and the server must reach its
	// directory.
	dir, err := os.MkdirTemp("", "followups-compare-pg-")
	if err != nil {
		return nil, err
	}
	s := &postgresServer{bin: bin, dir: dir}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	initdb := exec.CommandContext(ictx, filepath.Join(bin, "initdb"), "-D", data, "-U", postgresUser,
		"--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	addr, err := freeAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	_, s.port, _ = net.SplitHostPort(addr)
	// Every durability setting is PostgreSQL's default (fsync on,
	// synchronous_commit on, full_page_writes on): a commit returns once
	// its WAL is flushed.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-p", s.port,
		"-c", "unix_socket_directories="+dir,
		"-c", "max_connections="+strconv.Itoa(maxConns))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	p, err := startProcess("postgres", cmd, filepath.Join(work, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.process = p
	err = p.waitFor(time.Minute, "accept connections", func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.exec(ctx, "SELECT 1")
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// postgresCredential is who PostgreSQL runs as: nil for the current user,
// unless that is root.
func postgresCredential(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and there is no user %q to run it as (bash bench/setup.sh creates it): %w", name, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// dsn is the connection string of database db.
func (s *postgresServer) dsn(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%s/%s?sslmode=disable", postgresUser, s.port, db)
}

// exec runs one statement in the postgres database.
func (s *postgresServer) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// createDatabase creates an empty database.
func (s *postgresServer) createDatabase(ctx context.Context, name string) error {
	if err := s.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// dropDatabase drops a database, closing any connection left to it.
func (s *postgresServer) dropDatabase(ctx context.Context, name string) error {
	if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// close stops PostgreSQL with a fast shutdown (SIGINT) and removes its
// directory.
func (s *postgresServer) close() error {
	var err error
	if s.process != nil {
		err = s.stop(syscall.SIGINT, time.Minute)
	}
	os.RemoveAll(s.dir)
	return err
}

// postgresVersion is what postgres --version says.
func postgresVersion(bin string) string {
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
