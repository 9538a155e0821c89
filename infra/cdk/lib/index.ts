export { MIGRATE_ASL_PATH, Snap2DsqlMigration } from './migration';
export type { Snap2DsqlMigrationProps } from './migration';
export { FUNCTIONS } from './policies';
export type { FunctionName, FunctionSpec } from './policies';
export { DEFAULT_METRICS_NAMESPACE, MONITORING_TEMPLATE_PATH, STACK_TAG } from './monitoring';
