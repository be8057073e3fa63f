// Package snsalert is the alert.Publisher adapter on Amazon SNS: each alert is published
// to one topic as its JSON, with message attributes "level" and "key" so subscriptions
// can filter (e.g. page only on critical).
package snsalert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"

	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/errs"
)

// snsAPI is the part of the SNS client the publisher uses.
type snsAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Message attribute names set on every publish.
const (
	AttrLevel = "level"
	AttrKey   = "key"
)

// Publisher is an alert.Publisher on one SNS topic.
type Publisher struct {
	api   snsAPI
	topic string
}

var _ alert.Publisher = (*Publisher)(nil)

// New returns a publisher to topicARN. It sends no request.
func New(cfg aws.Config, topicARN string) *Publisher {
	return &Publisher{api: sns.NewFromConfig(cfg), topic: topicARN}
}

// Publish sends a as JSON. The subject is the alert's title, cut to SNS's limit.
func (p *Publisher) Publish(ctx context.Context, a alert.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return errs.Wrap(errs.Invalid, "publish alert "+a.Key, err)
	}
	in := &sns.PublishInput{
		TopicArn:          &p.topic,
		Message:           aws.String(string(body)),
		MessageAttributes: map[string]types.MessageAttributeValue{},
	}
	if s := subject(a.Title); s != "" {
		in.Subject = &s
	}
	// SNS rejects empty attribute values.
	if a.Level != "" {
		in.MessageAttributes[AttrLevel] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(a.Level)}
	}
	if a.Key != "" {
		in.MessageAttributes[AttrKey] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(a.Key)}
	}
	if _, err := p.api.Publish(ctx, in); err != nil {
		return apiError("publish alert "+a.Key, err)
	}
	return nil
}

// subject makes title a valid SNS subject: printable ASCII, no newline, under 100
// characters.
func subject(title string) string {
	b := make([]byte, 0, min(len(title), 99))
	for i := 0; i < len(title) && len(b) < 99; i++ {
		c := title[i]
		if c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

// CreateTopic makes (or finds: SNS's CreateTopic is idempotent) topic name and returns
// its ARN.
func CreateTopic(ctx context.Context, cfg aws.Config, name string) (string, error) {
	out, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: &name})
	if err != nil {
		return "", apiError("create topic "+name, err)
	}
	return aws.ToString(out.TopicArn), nil
}

// DeleteTopic deletes the topic; a missing one is not an error.
func DeleteTopic(ctx context.Context, cfg aws.Config, arn string) error {
	_, err := sns.NewFromConfig(cfg).DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: &arn})
	if err != nil && !errs.Is(apiError("", err), errs.NotFound) {
		return apiError("delete topic "+arn, err)
	}
	return nil
}

// Subscribe subscribes an SQS queue (by ARN) to the topic with raw message delivery,
// so the queue receives the alert JSON itself. filterPolicy, if not empty, is an SNS
// filter policy on the message attributes, e.g. {"level": ["critical"]}.
func Subscribe(ctx context.Context, cfg aws.Config, topicARN, queueARN, filterPolicy string) (string, error) {
	attrs := map[string]string{"RawMessageDelivery": "true"}
	if filterPolicy != "" {
		attrs["FilterPolicy"] = filterPolicy
	}
	out, err := sns.NewFromConfig(cfg).Subscribe(ctx, &sns.SubscribeInput{
		TopicArn:              &topicARN,
		Protocol:              aws.String("sqs"),
		Endpoint:              &queueARN,
		Attributes:            attrs,
		ReturnSubscriptionArn: true,
	})
	if err != nil {
		return "", apiError("subscribe "+queueARN, err)
	}
	return aws.ToString(out.SubscriptionArn), nil
}

// apiError gives an SDK error the Kind a caller acts on.
func apiError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return errs.Wrap(errs.Unavailable, op, err)
	}
	switch ae.ErrorCode() {
	case "NotFound", "NotFoundException", "ResourceNotFound":
		return &errs.Error{Kind: errs.NotFound, Op: op, Msg: "no such topic", Err: err}
	case "Throttled", "ThrottlingException":
		return errs.Wrap(errs.RateLimited, op, err)
	case "InvalidParameter", "InvalidParameterValue", "ValidationException":
		return errs.Wrap(errs.Invalid, op, err)
	case "AuthorizationError":
		return errs.Wrap(errs.Permission, op, err)
	case "InternalError", "ServiceUnavailable":
		return errs.Wrap(errs.Transient, op, err)
	}
	return errs.Wrap(errs.Other, op, err)
}
