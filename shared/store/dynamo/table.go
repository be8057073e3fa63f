package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/straas/straas/shared/store"
)

// tableAPI is the part of the DynamoDB client CreateTable and DeleteTable use.
type tableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTable(ctx context.Context, in *dynamodb.UpdateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error)
}

// tableWait bounds how long CreateTable waits for the table and each new GSI.
const tableWait = 5 * time.Minute

// CreateTable makes the store's table (on-demand billing, one GSI per store index, TTL on
// the ttl attribute) and waits until it is active. It is idempotent: on an existing table
// it adds missing GSIs and enables TTL, so adding a store index is a rerun of bootstrap.
func CreateTable(ctx context.Context, cfg aws.Config, name string) error {
	return createTable(ctx, dynamodb.NewFromConfig(cfg), name)
}

// DeleteTable deletes the table; a missing table is not an error.
func DeleteTable(ctx context.Context, cfg aws.Config, name string) error {
	_, err := dynamodb.NewFromConfig(cfg).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &name})
	var rnf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &rnf) {
		return apiError("delete table "+name, err)
	}
	return nil
}

func tableSchema(name string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:   &name,
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
	}
	for _, idx := range store.Indexes {
		in.AttributeDefinitions = append(in.AttributeDefinitions,
			types.AttributeDefinition{AttributeName: aws.String(indexPKAttr(idx)), AttributeType: types.ScalarAttributeTypeS},
			types.AttributeDefinition{AttributeName: aws.String(indexSKAttr(idx)), AttributeType: types.ScalarAttributeTypeS})
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi(idx))
	}
	return in
}

func gsi(idx string) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(GSIName(idx)),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(indexPKAttr(idx)), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(indexSKAttr(idx)), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

func createTable(ctx context.Context, api tableAPI, name string) error {
	op := "create table " + name
	schema := tableSchema(name)
	_, err := api.CreateTable(ctx, schema)
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return apiError(op, err)
	}
	if err := waitActive(ctx, api, name, ""); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := addMissingIndexes(ctx, api, name, schema.AttributeDefinitions); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return enableTTL(ctx, api, name)
}

// addMissingIndexes creates, one at a time as DynamoDB requires, the GSIs of store
// indexes an older table lacks.
func addMissingIndexes(ctx context.Context, api tableAPI, name string, defs []types.AttributeDefinition) error {
	desc, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	if err != nil {
		return apiError("describe table", err)
	}
	have := map[string]bool{}
	for _, g := range desc.Table.GlobalSecondaryIndexes {
		have[aws.ToString(g.IndexName)] = true
	}
	for _, idx := range store.Indexes {
		if have[GSIName(idx)] {
			continue
		}
		g := gsi(idx)
		_, err := api.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:            &name,
			AttributeDefinitions: defs,
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
				IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection,
			}}},
		})
		if err != nil {
			return apiError("add index "+GSIName(idx), err)
		}
		if err := waitActive(ctx, api, name, GSIName(idx)); err != nil {
			return err
		}
	}
	return nil
}

// waitActive polls until the table (and index, if named) is ACTIVE.
func waitActive(ctx context.Context, api tableAPI, name, index string) error {
	ctx, cancel := context.WithTimeout(ctx, tableWait)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		desc, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
		if err != nil {
			return apiError("describe table", err)
		}
		if active(desc.Table, index) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for table %s %s to become active: %w", name, index, ctx.Err())
		case <-tick.C:
		}
	}
}

func active(t *types.TableDescription, index string) bool {
	if t == nil || t.TableStatus != types.TableStatusActive {
		return false
	}
	if index == "" {
		return true
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) == index {
			return g.IndexStatus == types.IndexStatusActive || g.IndexStatus == ""
		}
	}
	return false
}

func enableTTL(ctx context.Context, api tableAPI, name string) error {
	d, err := api.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &name})
	if err != nil {
		return apiError("describe ttl of "+name, err)
	}
	if t := d.TimeToLiveDescription; t != nil && aws.ToString(t.AttributeName) == attrTTL &&
		(t.TimeToLiveStatus == types.TimeToLiveStatusEnabled || t.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &name,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attrTTL), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return apiError("enable ttl on "+name, err)
	}
	return nil
}
