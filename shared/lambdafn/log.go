package lambdafn

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// KeyAWSRequestID names the Lambda request id in log lines. It is not
// "request_id": the API's request lines already use that key for API
// Gateway's request id, which the gateway's access log shows.
const KeyAWSRequestID = "aws_request_id"

// LogHandler wraps h so that every record logged with a context from a
// Lambda invocation carries that invocation's request id. Service code
// logs with InfoContext(ctx, ...) and the like, so nothing is passed down
// by hand, and records of concurrent invocations never mix ids.
func LogHandler(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(KeyAWSRequestID, lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
