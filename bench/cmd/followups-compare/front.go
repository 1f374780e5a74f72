package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"
)

// The front is a child the comparison starts for the asynq+http system: a
// thin net/http server that takes followupd's create (POST /followups, the
// same JSON) and enqueues it with asynq, and the asynq server that
// delivers the tasks, in one process as followupd is. It stops on SIGTERM.
const roleFront = "asynq-front"

// frontOptions are the front's settings, which the comparison passes as
// one JSON argument.
type frontOptions struct {
	Addr  string        `json:"addr"`
	Redis string        `json:"redis"`
	Queue queueSettings `json:"queue"`
}

// runFront is the front role's main; it returns when ctx is done.
func runFront(ctx context.Context, args []string) int {
	var o frontOptions
	if err := roleSettings(args, &o); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", roleFront, err)
		return exitUsage
	}
	if err := serveFront(ctx, &o); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", roleFront, err)
		return exitFailed
	}
	return exitOK
}

func serveFront(ctx context.Context, o *frontOptions) error {
	q, err := startAsynq(o.Redis, o.Queue)
	if err != nil {
		return err
	}
	defer q.close()
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /followups", func(w http.ResponseWriter, r *http.Request) { frontCreate(w, r, q) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// frontCreate is POST /followups: it decodes the create, checks what a
// delivery needs, enqueues the followup for its run_at and answers 201
// with its id, after Redis acknowledged (and fsynced) it.
func frontCreate(w http.ResponseWriter, r *http.Request, q *asynqQueue) {
	var f followup
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&f); err != nil {
		frontError(w, http.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	switch {
	case f.ThreadID == "" || f.Prompt == "":
		frontError(w, http.StatusBadRequest, "invalid_argument", "thread_id and prompt are required")
		return
	case f.RunAt.IsZero():
		frontError(w, http.StatusBadRequest, "invalid_argument", "run_at is required")
		return
	}
	f.ID = uuid.NewString()
	if err := q.schedule(r.Context(), f); err != nil {
		frontError(w, http.StatusServiceUnavailable, "unavailable", "enqueue failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/followups/"+f.ID)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(struct {
		ID     string    `json:"id"`
		Status string    `json:"status"`
		RunAt  time.Time `json:"run_at"`
	}{f.ID, "scheduled", f.RunAt})
}

func frontError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
