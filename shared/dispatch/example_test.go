package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/followups/followups/shared/dispatch"
	"github.com/followups/followups/shared/followup"
)

// A thread service checks the signature over the raw body before it trusts
// the message, then answers 2xx to have the followup delivered.
func ExampleVerify() {
	secret := []byte("shared-signing-secret")

	mux := http.NewServeMux()
	mux.HandleFunc("POST /threads/{thread}/messages", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		sig := r.Header.Get(dispatch.SignatureHeader)
		if err := dispatch.Verify(secret, sig, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var m dispatch.Message
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, "not a message", http.StatusBadRequest)
			return
		}
		fmt.Printf("thread %q: %s says %q (attempt %d)\n",
			r.PathValue("thread"), m.Followup.ID, m.Content, m.Followup.Attempt)
		w.WriteHeader(http.StatusAccepted)
	})
	thread := httptest.NewServer(mux)
	defer thread.Close()

	base, _ := url.Parse(thread.URL)
	client, err := dispatch.New(dispatch.Options{BaseURL: base, SigningSecret: secret})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := &followup.Followup{
		ID:        "fu_1",
		ThreadID:  "team/t-123",
		Prompt:    "Check whether the nightly build finished.",
		RunAt:     time.Now(),
		CreatedAt: time.Now().Add(-time.Hour),
	}
	a := client.Dispatch(context.Background(), f, 1)
	fmt.Println(a.Outcome, a.HTTPStatus)

	// Output:
	// thread "team/t-123": fu_1 says "Check whether the nightly build finished." (attempt 1)
	// success 202
}

// Sign gives the header value a Client sends; a thread service's tests can
// use it to build signed requests.
func ExampleSign() {
	header := dispatch.Sign([]byte("whsec_test"), time.Unix(1700000000, 0), []byte(`{"role":"user"}`))
	fmt.Println(header)
	// Output: t=1700000000,v1=071f3a9ce4d1298a062902b95325a88b72702824414c2bca5799671c00f4dc73
}
