/** Tables of the budgets area of the governance schema (filled in with its migrations). */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface BudgetTables {}
