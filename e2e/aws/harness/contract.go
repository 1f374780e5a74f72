package harness

import (
	"net/http"

	"github.com/followups/followups/shared/api/apitest"
)

// checkContract fails the test (with Errorf, so from any goroutine) when
// the schedule function's response to a request does not match the API's
// OpenAPI document (apitest.Check).
func (e *Env) checkContract(method, target string, headers map[string]string, resp *Response) {
	e.T.Helper()
	doc, err := apitest.Load()
	if err != nil {
		e.T.Errorf("openapi.json: %v", err)
		return
	}
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		e.T.Errorf("%s %s: %v", method, target, err)
		return
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	header := http.Header{}
	for k, v := range resp.Header {
		header.Set(k, v)
	}
	if err := doc.Check(req, resp.Status, header, resp.Body); err != nil {
		e.T.Errorf("the schedule function's response does not match openapi.json: %v", err)
	}
}
