export { MIGRATE_ASL_PATH, Snap2DsqlMigration } from './migration';
export type { Snap2DsqlMigrationProps } from './migration';
export { FUNCTIONS } from './policies';
export type { FunctionName, FunctionSpec } from './policies';
