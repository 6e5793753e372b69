/* openapi_models.c — the shapes of the API, in openapi.h's notation: the
 * models (upstream's pydantic names, fractal_server/app/schemas/ and the
 * routers' own), then one operation per route of api/routes.c, in its
 * order. Request models follow the vfield_t tables and model validators
 * the handlers use (in api/ and model/); answer models follow what the
 * handlers write. tests/conftest.py checks every answer the black-box
 * suite receives against them, so that a handler that drifts fails a
 * test; openapi_build() refuses a route without its operation. */
#include "api/openapi.h"

#define PAGE(x) { "PaginationResponse_" x "_", "current_page:pos page_size:nonneg total_count:nonneg items:[" x "]" }
#define PAGED "page?:pos page_size?:nonneg|null"

const api_model_t api_models[] = {
	/* shared types (fractal_server/types/) */
	{ "ImageAttributeValue", "= int|num|str|bool" },
	{ "TypeFilters", "= {bool}" },
	{ "AttributeFilters", "= {[ImageAttributeValue]}" },
	{ "ResourceType", "= enum(local,slurm_sudo,slurm_ssh)" },
	{ "TaskType", "= enum(compound,converter_compound,non_parallel,converter_non_parallel,parallel)" },
	{ "JobStatusType", "= enum(submitted,done,failed)" },
	{ "HistoryUnitStatus", "= enum(submitted,done,failed)" },
	{ "HistoryUnitStatusWithUnset", "= enum(submitted,done,failed,unset)" },
	{ "TaskGroupOriginEnum", "= enum(pypi,wheel-file,pixi,other)" },
	{ "TaskGroupActivityStatus", "= enum(pending,ongoing,failed,OK)" },
	{ "TaskGroupActivityAction", "= enum(collect,deactivate,reactivate,delete,reset)" },
	{ "ProjectPermissions", "= enum(r,rw,rwx)" },
	/* accounts */
	{ "Alive", "alive:bool version:str" },
	{ "Body_login", "grant_type?:str|null username:str password:str scope?:str client_id?:str|null "
			"client_secret?:str|null" },
	{ "BearerResponse", "access_token:str token_type:str" },
	{ "OAuth2AuthorizeResponse", "authorization_url:str" },
	{ "OAuthAccountRead", "id:int account_email:str oauth_name:str" },
	{ "UserRead", "id:int email:email is_active:bool is_superuser:bool is_verified:bool is_guest:bool "
		      "group_ids_names?:[(int,str)]|null oauth_accounts:[OAuthAccountRead] profile_id:int|null "
		      "project_dirs:[str] slurm_accounts:[str]" },
	{ "UserCreate", "email:email password:str+ is_active?:bool|null is_superuser?:bool|null is_verified?:bool|null "
			"is_guest?:bool profile_id?:int|null project_dirs:[str+] slurm_accounts?:[str+]" },
	{ "UserUpdate", "! password?:str+ email?:email is_active?:bool is_superuser?:bool is_verified?:bool is_guest?:bool "
			"profile_id?:int|null project_dirs?:[str+] slurm_accounts?:[str+]" },
	{ "UserUpdateStrict", "! slurm_accounts?:[str+]" },
	{ "UserUpdateGroups", "! group_ids:[nonneg]" },
	{ "UserProfileInfo", "has_profile:bool resource_name:str|null profile_name:str|null username:str|null" },
	{ "UserGroupRead", "id:int name:str timestamp_created:dt user_ids?:[int]|null" },
	{ "UserGroupCreate", "! name:str+" },
	/* settings: upstream's settings objects, secrets masked */
	{ "Settings", "= obj" },
	/* resources and profiles */
	{ "ValidResourceLocal", "type:enum(local) name:str+ tasks_python_config:obj tasks_pixi_config?:obj "
				"tasks_local_dir:str+ jobs_local_dir:str+ jobs_runner_config:obj jobs_poll_interval?:int "
				"prevent_new_submissions?:bool jobs_slurm_python_worker?:null host?:null" },
	{ "ValidResourceSlurmSudo", "type:enum(slurm_sudo) name:str+ tasks_python_config:obj tasks_pixi_config?:obj "
				    "tasks_local_dir:str+ jobs_local_dir:str+ jobs_runner_config:obj "
				    "jobs_poll_interval?:int prevent_new_submissions?:bool jobs_slurm_python_worker:str+ "
				    "host?:null" },
	{ "ValidResourceSlurmSSH", "type:enum(slurm_ssh) name:str+ tasks_python_config:obj tasks_pixi_config?:obj "
				   "tasks_local_dir:str+ jobs_local_dir:str+ jobs_runner_config:obj "
				   "jobs_poll_interval?:int prevent_new_submissions?:bool jobs_slurm_python_worker:str+ "
				   "host:str+" },
	{ "ResourceCreate", "= ValidResourceLocal|ValidResourceSlurmSudo|ValidResourceSlurmSSH" },
	{ "ResourceRead", "id:int name:str type:str prevent_new_submissions:bool timestamp_created:dt host:str|null "
			  "jobs_local_dir:str jobs_runner_config:obj jobs_slurm_python_worker:str|null "
			  "jobs_poll_interval:int tasks_local_dir:str tasks_python_config:obj tasks_pixi_config:obj" },
	{ "ValidProfileLocal", "name:str+ resource_type:enum(local) username?:null ssh_key_path?:null "
			       "jobs_remote_dir?:null tasks_remote_dir?:null pixi_cache_dir?:null" },
	{ "ValidProfileSlurmSudo", "name:str+ resource_type:enum(slurm_sudo) username:str+ ssh_key_path?:null "
				   "jobs_remote_dir?:null tasks_remote_dir?:null pixi_cache_dir?:null" },
	{ "ValidProfileSlurmSSH", "name:str+ resource_type:enum(slurm_ssh) username:str+ ssh_key_path:str+ "
				  "jobs_remote_dir:str+ tasks_remote_dir:str+ pixi_cache_dir?:str+|null" },
	{ "ProfileCreate", "= ValidProfileLocal|ValidProfileSlurmSudo|ValidProfileSlurmSSH" },
	{ "ProfileRead", "id:int name:str resource_id:int resource_type:str username:str|null ssh_key_path:str|null "
			 "jobs_remote_dir:str|null tasks_remote_dir:str|null pixi_cache_dir:str|null" },
	/* projects and sharing */
	{ "ProjectCreate", "! name:str+ description?:str+|null" },
	{ "ProjectUpdate", "! name?:str+ description?:str+|null" },
	{ "ProjectRead", "id:int name:str description:str|null is_starred:bool timestamp_created:dt" },
	{ "ProjectReadSuperuser", "^ProjectRead user_email:str" },
	{ "ProjectGuestCreate", "permissions:ProjectPermissions" },
	{ "ProjectGuestUpdate", "permissions:ProjectPermissions" },
	{ "ProjectGuestRead", "email:str is_verified:bool permissions:str" },
	{ "ProjectAccessRead", "is_owner:bool permissions:str owner_email:str" },
	{ "ProjectInvitationRead", "project_id:int project_name:str owner_email:str guest_permissions:str" },
	{ "LinkUserProjectRead", "user_id:int user_email:str project_id:int project_name:str is_verified:bool "
				 "is_owner:bool permissions:str" },
	/* datasets and images */
	{ "SingleImage", "zarr_url:str+ origin?:str+|null attributes?:{ImageAttributeValue} types?:{bool}" },
	{ "SingleImageWithWarnings", "^SingleImage has_warnings?:bool|null" },
	{ "SingleImageUpdate", "! zarr_url:str+ attributes?:{ImageAttributeValue} types?:{bool}|null" },
	{ "ImageQuery", "type_filters?:TypeFilters attribute_filters?:AttributeFilters" },
	{ "ImageQueryWithZarrUrl", "^ImageQuery zarr_url?:str|null" },
	{ "NonProcessedImagesPayload", "attribute_filters?:AttributeFilters type_filters?:TypeFilters" },
	{ "ImagePage", "current_page:pos page_size:nonneg total_count:nonneg items:[SingleImage] "
		       "attributes:{[ImageAttributeValue]} types:[str]" },
	{ "ImagePageWithWarnings", "current_page:pos page_size:nonneg total_count:nonneg items:[SingleImageWithWarnings] "
				   "attributes:{[ImageAttributeValue]} types:[str]" },
	{ "DatasetCreate", "! name:str+ project_dir?:str+|null zarr_subfolder?:str+|null" },
	{ "DatasetUpdate", "! name?:str+" },
	{ "DatasetImport", "name:str+ zarr_dir:str+ images?:[SingleImage]" },
	{ "DatasetRead", "id:int name:str project_id:int project:ProjectRead timestamp_created:dt zarr_dir:str "
			 "is_starred:bool" },
	{ "DatasetReadExpanded", "^DatasetRead owner_email:str image_count:int" },
	{ "DatasetExport", "name:str zarr_dir:str images:[SingleImage]" },
	PAGE("DatasetReadExpanded"),
	/* tasks */
	{ "TaskCreate", "! name:str+ command_non_parallel?:str+|null command_parallel?:str+|null meta_non_parallel?:obj|null "
			"meta_parallel?:obj|null version:str+ args_schema_non_parallel?:obj|null "
			"args_schema_parallel?:obj|null args_schema_version?:str+|null docs_info?:str|null "
			"docs_link?:str+|null input_types?:TypeFilters output_types?:TypeFilters category?:str+|null "
			"modality?:str+|null tags?:[str+] authors?:str+|null type?:TaskType|null" },
	{ "TaskUpdate", "! command_parallel?:str+|null command_non_parallel?:str+|null input_types?:TypeFilters|null "
			"output_types?:TypeFilters|null category?:str+|null modality?:str+|null authors?:str+|null "
			"tags?:[str+]|null" },
	{ "TaskRead", "id:int name:str type:TaskType version:str is_core:bool command_non_parallel:str|null "
		      "command_parallel:str|null meta_parallel:obj meta_non_parallel:obj args_schema_non_parallel:obj|null "
		      "args_schema_parallel:obj|null args_schema_version:str|null docs_info:str|null docs_link:str|null "
		      "input_types:{bool} output_types:{bool} taskgroupv2_id:int|null category:str|null "
		      "modality:str|null authors:str|null tags:[str]" },
	{ "TaskReadSlim", "id:int name:str version:str is_core:bool category:str|null modality:str|null "
			  "authors:str|null tags:[str] input_types:{bool} docs_info:str|null docs_link:str|null" },
	{ "TaskManifestV2", "name:str executable_non_parallel?:str|null executable_parallel?:str|null input_types?:{bool} "
			    "output_types?:{bool} meta_non_parallel?:obj meta_parallel?:obj "
			    "args_schema_non_parallel?:obj|null args_schema_parallel?:obj|null docs_info?:str|null "
			    "docs_link?:str|null category?:str|null modality?:str|null tags?:[str] type?:TaskType|null" },
	{ "ManifestV2", "manifest_version:enum(2) task_list:[TaskManifestV2] has_args_schemas?:bool "
			"args_schema_version?:str|null authors?:str+|null" },
	{ "Body_collect_tasks_pip", "file?:binary package?:str+ package_version?:str+ package_extras?:str+ "
				    "python_version?:str pinned_package_versions_pre?:str pinned_package_versions_post?:str" },
	{ "Body_collect_task_pixi", "file:binary pixi_version?:str+ use_pixi_lockfile?:bool" },
	{ "TaskCollectCustom", "! manifest:ManifestV2 python_interpreter:str+ label:str+ package_root?:str+|null "
			       "package_name?:str+|null version:str+" },
	{ "TaskGroupRead", "id:int task_list:[TaskRead] user_email:str user_group_id:int|null origin:TaskGroupOriginEnum "
			   "pkg_name:str version:str python_version:str|null pixi_version:str|null path:str|null "
			   "venv_path:str|null archive_path:str|null pip_extras:str|null "
			   "pinned_package_versions_pre:{str} pinned_package_versions_post:{str} in_use:bool active:bool "
			   "timestamp_created:dt timestamp_last_used:dt" },
	{ "TaskGroupReadSlim", "^TaskGroupRead task_list:[TaskReadSlim]" },
	{ "TaskGroupReadSuperuser", "^TaskGroupRead user_id:int resource_id:int" },
	{ "TaskGroupUpdate", "! user_group_id?:int|null" },
	{ "TaskGroupActivityRead", "id:int user_id:int taskgroupv2_id:int|null timestamp_started:dt timestamp_ended:dt|null "
				   "pkg_name:str version:str status:TaskGroupActivityStatus action:TaskGroupActivityAction "
				   "log:str|null" },
	{ "TaskGroupOverridesPip", "! pip_extras?:str|null python_version?:str|null pinned_package_versions_pre?:str "
				   "pinned_package_versions_post?:str" },
	{ "TaskGroupOverridesPixi", "! use_pixi_lockfile?:bool" },
	{ "TaskMinimal", "id:int name:str type:str is_core:bool taskgroupv2_id:int command_non_parallel:str|null "
			 "command_parallel:str|null version:str pkg_name:str active:bool owner:str user_group:str|null" },
	{ "ProjectUser", "id:int email:str" },
	{ "TaskRelationship", "workflow_id:int workflow_name:str project_id:int project_name:str project_users:[ProjectUser]" },
	{ "TaskInfo", "task:TaskMinimal relationships:[TaskRelationship]" },
	PAGE("TaskInfo"),
	PAGE("TaskGroupReadSuperuser"),
	PAGE("TaskGroupActivityRead"),
	{ "TaskVersionRead", "task_id:int version:str" },
	/* workflows */
	{ "WorkflowTaskRead", "id:int workflow_id:int order:int|null meta_non_parallel:obj|null meta_parallel:obj|null "
			      "args_non_parallel:obj|null args_parallel:obj|null type_filters:{bool} task_type:TaskType "
			      "task_id:int task:TaskRead alias:str|null description:str|null" },
	{ "WorkflowTaskReadWithWarning", "^WorkflowTaskRead warning?:str|null" },
	{ "WorkflowTaskCreate", "! task_id:int meta_non_parallel?:obj|null meta_parallel?:obj|null args_non_parallel?:obj|null "
				"args_parallel?:obj|null type_filters?:TypeFilters description?:str+|null alias?:str+|null" },
	{ "WorkflowTaskUpdate", "! meta_non_parallel?:obj|null meta_parallel?:obj|null args_non_parallel?:obj|null "
				"args_parallel?:obj|null type_filters?:TypeFilters description?:str+|null alias?:str+|null" },
	{ "WorkflowTaskReplace", "args_non_parallel?:obj|null args_parallel?:obj|null" },
	{ "TypeFiltersFlow", "workflowtask_id:int current_type_filters:TypeFilters input_type_filters:TypeFilters "
			     "output_type_filters:TypeFilters" },
	{ "WorkflowRead", "id:int name:str project_id:int is_starred:bool task_list:[WorkflowTaskRead] project:ProjectRead "
			  "timestamp_created:dt description:str|null template_id:int|null" },
	{ "WorkflowReadWithWarnings", "^WorkflowRead task_list:[WorkflowTaskReadWithWarning]" },
	{ "WorkflowCreate", "! name:str+ description?:str+|null" },
	{ "WorkflowUpdate", "! name?:str+ reordered_workflowtask_ids?:[nonneg]|null description?:str+|null" },
	{ "TaskImport", "! pkg_name:str+ version?:str+|null name:str+" },
	{ "WorkflowTaskImport", "! meta_non_parallel?:obj|null meta_parallel?:obj|null args_non_parallel?:obj|null "
				"args_parallel?:obj|null type_filters?:TypeFilters|null input_filters?:obj|null "
				"description?:str+|null alias?:str+|null task:TaskImport" },
	{ "WorkflowImport", "! name:str+ description?:str+|null task_list:[WorkflowTaskImport]" },
	{ "WorkflowImportFromTemplate", "! name?:str+|null override_versions?:{str+}" },
	{ "TaskExport", "pkg_name:str version:str|null name:str" },
	{ "WorkflowTaskExport", "meta_non_parallel:obj|null meta_parallel:obj|null args_non_parallel:obj|null "
				"args_parallel:obj|null type_filters:{bool} description:str|null alias:str|null "
				"task:TaskExport" },
	{ "WorkflowExport", "name:str description:str|null task_list:[WorkflowTaskExport]" },
	/* workflow templates */
	{ "WorkflowTemplateRead", "id:int user_email:str name:str version:int timestamp_created:dt timestamp_last_used:dt "
				  "user_group_id:int|null description:str|null data:WorkflowExport fractal_server_version:str" },
	{ "WorkflowTemplateGroupMember", "template_id:int template_version:int" },
	{ "WorkflowTemplateGroup", "user_email:str template_name:str templates:[WorkflowTemplateGroupMember]" },
	{ "TemplatePage", "current_page:pos page_size:nonneg total_count:nonneg items:[WorkflowTemplateGroup] "
			  "email_list:[str]" },
	{ "WorkflowTemplateCreate", "name:str+ version:pos description?:str+|null" },
	{ "WorkflowTemplateImport", "name:str+ version:pos description?:str+|null data:WorkflowImport" },
	{ "WorkflowTemplateUpdate", "user_group_id?:int|null description?:str+|null" },
	{ "WorkflowTemplateExport", "name:str version:int description:str|null data:WorkflowExport" },
	/* jobs, history */
	{ "ProjectDump", "id:int name:str timestamp_created:str" },
	{ "WorkflowDump", "id:int name:str project_id:int timestamp_created:str" },
	{ "DatasetDump", "id:int name:str project_id:int timestamp_created:str zarr_dir:str" },
	{ "JobCreate", "! first_task_index?:nonneg|null last_task_index?:nonneg|null slurm_account?:str|null "
		       "worker_init?:str+|null attribute_filters?:AttributeFilters type_filters?:TypeFilters" },
	{ "JobRead", "id:int project_id:int|null project_dump:ProjectDump user_email:str slurm_account:str|null "
		     "workflow_id:int|null workflow_dump:WorkflowDump dataset_id:int|null dataset_dump:DatasetDump "
		     "start_timestamp:dt end_timestamp:dt|null status:JobStatusType log:str|null executor_error_log:str|null "
		     "working_dir:str|null working_dir_user:str|null first_task_index:int|null last_task_index:int|null "
		     "worker_init:str|null attribute_filters:AttributeFilters type_filters:{bool}" },
	{ "JobUpdate", "! status:JobStatusType" },
	{ "TaskStatusSimple", "status:HistoryUnitStatus" },
	{ "TaskStatusImages", "status:HistoryUnitStatus num_submitted_images:int num_done_images:int num_failed_images:int "
			      "num_available_images:int|null has_warnings:bool" },
	{ "JobWithTaskStatuses", "^JobRead task_statuses:{TaskStatusImages|TaskStatusSimple|null}" },
	PAGE("JobRead"),
	{ "HistoryRunReadAggregated", "id:int timestamp_started:dt workflowtask_dump:obj num_submitted_units:int "
				      "num_done_units:int num_failed_units:int num_units_with_warnings:int "
				      "args_schema_parallel:obj|null args_schema_non_parallel:obj|null version:str|null" },
	{ "HistoryUnitRead", "id:int logfile:str|null has_warnings:bool status:HistoryUnitStatus zarr_urls:[str]" },
	PAGE("HistoryUnitRead"),
	{ "ImageLogsRequest", "workflowtask_id:int dataset_id:int zarr_url:str" },
	/* admin */
	PAGE("ProjectReadSuperuser"),
	PAGE("LinkUserProjectRead"),
	{ "AccountingQuery", "user_id?:int|null timestamp_min?:dt|null timestamp_max?:dt|null fractal_job_id?:int|null" },
	{ "AccountingQuerySLURM", "^AccountingQuery resource_id?:int|null" },
	{ "AccountingRecordRead", "id:int user_id:int timestamp:dt num_tasks:int num_new_images:int" },
	PAGE("AccountingRecordRead"),
	{ 0 },
};

#define JSON_LIST "[str]"
#define ZIP "application/zip"

/* Statuses and bodies are upstream's (routes.md); summaries are ours. */
const api_op_t api_ops[] = {
	/* /api */
	{ "GET", "/api/alive/", 200, .resp = "Alive", .summary = "Alive" },
	{ "GET", "/api/settings/app/", 200, .resp = "Settings", .summary = "View the application settings" },
	{ "GET", "/api/settings/database/", 200, .resp = "Settings", .summary = "View the database settings" },
	{ "GET", "/api/settings/email/", 200, .resp = "Settings", .summary = "View the e-mail settings" },
	{ "GET", "/api/settings/oauth/", 200, .resp = "Settings", .summary = "View the OAuth settings" },
	/* projects, datasets, images */
	{ "GET", "/api/v2/project/", 200, .query = "is_owner?:bool", .resp = "[ProjectRead]", .summary = "List projects" },
	{ "POST", "/api/v2/project/", 201, .body = "ProjectCreate", .resp = "ProjectRead", .summary = "Create a project" },
	{ "GET", "/api/v2/project/invitation/", 200, .resp = "[ProjectInvitationRead]", .summary = "Pending invitations" },
	{ "GET", "/api/v2/project/{project_id}/", 200, .resp = "ProjectRead", .summary = "Read a project" },
	{ "PATCH", "/api/v2/project/{project_id}/", 200, .body = "ProjectUpdate", .resp = "ProjectRead", .summary = "Update a project" },
	{ "DELETE", "/api/v2/project/{project_id}/", 204, .summary = "Delete a project" },
	{ "POST", "/api/v2/project/{project_id}/star/", 200, .summary = "Star a project" },
	{ "POST", "/api/v2/project/{project_id}/unstar/", 200, .summary = "Unstar a project" },
	{ "GET", "/api/v2/project/{project_id}/guest/", 200, .resp = "[ProjectGuestRead]", .summary = "List a project's guests" },
	{ "POST", "/api/v2/project/{project_id}/guest/", 201, .query = "email:email", .body = "ProjectGuestCreate", .summary = "Invite a guest" },
	{ "PATCH", "/api/v2/project/{project_id}/guest/", 200, .query = "email:email", .body = "ProjectGuestUpdate", .summary = "Change a guest's permissions" },
	{ "DELETE", "/api/v2/project/{project_id}/guest/", 204, .query = "email:email", .summary = "Revoke a guest's access" },
	{ "GET", "/api/v2/project/{project_id}/access/", 200, .resp = "ProjectAccessRead", .summary = "Your access to a project" },
	{ "DELETE", "/api/v2/project/{project_id}/access/", 204, .summary = "Leave a shared project" },
	{ "POST", "/api/v2/project/{project_id}/access/accept/", 200, .summary = "Accept an invitation" },
	{ "GET", "/api/v2/dataset/", 200, .query = "project_name?:str|null dataset_name?:str|null only_owned?:bool " PAGED,
	  .resp = "PaginationResponse_DatasetReadExpanded_", .summary = "All your datasets" },
	{ "GET", "/api/v2/project/{project_id}/dataset/", 200, .resp = "[DatasetRead]", .summary = "List a project's datasets" },
	{ "POST", "/api/v2/project/{project_id}/dataset/", 201, .body = "DatasetCreate", .resp = "DatasetRead", .summary = "Create a dataset" },
	{ "POST", "/api/v2/project/{project_id}/dataset/import/", 201, .body = "DatasetImport", .resp = "DatasetRead", .summary = "Import a dataset" },
	{ "GET", "/api/v2/project/{project_id}/dataset/{dataset_id}/", 200, .resp = "DatasetRead", .summary = "Read a dataset" },
	{ "PATCH", "/api/v2/project/{project_id}/dataset/{dataset_id}/", 200, .body = "DatasetUpdate", .resp = "DatasetRead", .summary = "Update a dataset" },
	{ "DELETE", "/api/v2/project/{project_id}/dataset/{dataset_id}/", 204, .summary = "Delete a dataset" },
	{ "GET", "/api/v2/project/{project_id}/dataset/{dataset_id}/export/", 200, .resp = "DatasetExport", .summary = "Export a dataset" },
	{ "POST", "/api/v2/project/{project_id}/dataset/{dataset_id}/star/", 200, .summary = "Star a dataset" },
	{ "POST", "/api/v2/project/{project_id}/dataset/{dataset_id}/unstar/", 200, .summary = "Unstar a dataset" },
	{ "POST", "/api/v2/project/{project_id}/dataset/{dataset_id}/images/", 201, .body = "SingleImage", .summary = "Add an image" },
	{ "PATCH", "/api/v2/project/{project_id}/dataset/{dataset_id}/images/", 200, .body = "SingleImageUpdate", .resp = "SingleImage", .summary = "Update an image" },
	{ "DELETE", "/api/v2/project/{project_id}/dataset/{dataset_id}/images/", 204, .query = "zarr_url:str", .summary = "Delete an image" },
	{ "POST", "/api/v2/project/{project_id}/dataset/{dataset_id}/images/query/", 200, .query = PAGED,
	  .body = "ImageQueryWithZarrUrl|null", .resp = "ImagePage", .summary = "Query a dataset's images" },
	{ "POST", "/api/v2/project/{project_id}/dataset/{dataset_id}/images/non-processed/", 200,
	  .query = "workflow_id:int workflowtask_id:int", .body = "NonProcessedImagesPayload", .resp = JSON_LIST,
	  .summary = "Images a task has not processed yet" },
	{ "POST", "/api/v2/project/{project_id}/dataset/{dataset_id}/images/verify-unique-types/", 200,
	  .query = "workflowtask_id:int", .body = "ImageQuery|null", .resp = JSON_LIST,
	  .summary = "Types whose value differs among the images" },
	/* history, latest job */
	{ "GET", "/api/v2/project/{project_id}/status/run/", 200, .query = "dataset_id:int workflowtask_id:int",
	  .resp = "[HistoryRunReadAggregated]", .summary = "A task's history runs" },
	{ "GET", "/api/v2/project/{project_id}/status/run/{history_run_id}/units/", 200,
	  .query = "dataset_id:int workflowtask_id:int unit_status?:HistoryUnitStatus|null " PAGED,
	  .resp = "PaginationResponse_HistoryUnitRead_", .summary = "A history run's units" },
	{ "POST", "/api/v2/project/{project_id}/status/images/", 200,
	  .query = "dataset_id:int workflowtask_id:int include_warnings?:bool " PAGED, .body = "ImageQuery",
	  .resp = "ImagePageWithWarnings", .summary = "The images a task ran on, with their status" },
	{ "POST", "/api/v2/project/{project_id}/status/image-log/", 200, .body = "ImageLogsRequest", .resp = "str",
	  .summary = "An image's log" },
	{ "GET", "/api/v2/project/{project_id}/status/unit-log/", 200,
	  .query = "history_run_id:int history_unit_id:int workflowtask_id:int dataset_id:int", .resp = "str",
	  .summary = "A history unit's log" },
	{ "GET", "/api/v2/project/{project_id}/latest-job/", 200, .query = "workflow_id:int dataset_id:int",
	  .resp = "JobWithTaskStatuses", .summary = "The latest job of a workflow on a dataset" },
	/* tasks and task groups */
	{ "GET", "/api/v2/task/", 200, .resp = "[TaskReadSlim]", .summary = "List tasks" },
	{ "POST", "/api/v2/task/", 201, .query = "user_group_id?:int|null private?:bool", .body = "TaskCreate",
	  .resp = "TaskRead", .summary = "Create a task" },
	{ "GET", "/api/v2/task/{task_id}/", 200, .resp = "TaskRead", .summary = "Read a task" },
	{ "PATCH", "/api/v2/task/{task_id}/", 200, .body = "TaskUpdate", .resp = "TaskRead", .summary = "Update a task" },
	{ "DELETE", "/api/v2/task/{task_id}/", 204, .summary = "Delete a task (never allowed)" },
	{ "POST", "/api/v2/task/collect/pip/", 202, .query = "private?:bool user_group_id?:int|null",
	  .multipart = "Body_collect_tasks_pip", .resp = "TaskGroupActivityRead", .summary = "Collect tasks with pip" },
	{ "POST", "/api/v2/task/collect/custom/", 201, .query = "private?:bool user_group_id?:int|null",
	  .body = "TaskCollectCustom", .resp = "[TaskRead]", .summary = "Collect tasks from an existing environment" },
	{ "POST", "/api/v2/task/collect/pixi/", 202, .query = "private?:bool user_group_id?:int|null",
	  .multipart = "Body_collect_task_pixi", .resp = "TaskGroupActivityRead", .summary = "Collect tasks with pixi" },
	{ "GET", "/api/v2/task-group/activity/", 200,
	  .query = "task_group_activity_id?:int|null taskgroupv2_id?:int|null pkg_name?:str|null "
		   "status?:TaskGroupActivityStatus|null action?:TaskGroupActivityAction|null timestamp_started_min?:dt|null",
	  .resp = "[TaskGroupActivityRead]", .summary = "List your task-group activities" },
	{ "GET", "/api/v2/task-group/activity/{task_group_activity_id}/", 200, .resp = "TaskGroupActivityRead",
	  .summary = "Read a task-group activity" },
	{ "GET", "/api/v2/task-group/", 200, .query = "only_active?:bool only_owner?:bool",
	  .resp = "[(str,[TaskGroupReadSlim])]", .summary = "List task groups, grouped by package" },
	{ "GET", "/api/v2/task-group/{task_group_id}/", 200, .resp = "TaskGroupRead", .summary = "Read a task group" },
	{ "PATCH", "/api/v2/task-group/{task_group_id}/", 200, .body = "TaskGroupUpdate", .resp = "TaskGroupRead",
	  .summary = "Update a task group" },
	{ "POST", "/api/v2/task-group/{task_group_id}/deactivate/", 202, .resp = "TaskGroupActivityRead",
	  .summary = "Deactivate a task group" },
	{ "POST", "/api/v2/task-group/{task_group_id}/reactivate/", 202, .resp = "TaskGroupActivityRead",
	  .summary = "Reactivate a task group" },
	{ "POST", "/api/v2/task-group/{task_group_id}/delete/", 202, .resp = "TaskGroupActivityRead",
	  .summary = "Delete a task group" },
	/* workflows and workflow tasks */
	{ "GET", "/api/v2/project/{project_id}/workflow/", 200, .resp = "[WorkflowRead]", .summary = "List a project's workflows" },
	{ "POST", "/api/v2/project/{project_id}/workflow/", 201, .body = "WorkflowCreate", .resp = "WorkflowRead", .summary = "Create a workflow" },
	{ "POST", "/api/v2/project/{project_id}/workflow/import/", 201, .body = "WorkflowImport",
	  .resp = "WorkflowReadWithWarnings", .summary = "Import a workflow" },
	{ "POST", "/api/v2/project/{project_id}/workflow/import-from-template/", 201, .query = "template_id:int",
	  .body = "WorkflowImportFromTemplate", .resp = "WorkflowReadWithWarnings", .summary = "Import a workflow from a template" },
	{ "GET", "/api/v2/project/{project_id}/workflow/{workflow_id}/", 200, .resp = "WorkflowReadWithWarnings", .summary = "Read a workflow" },
	{ "PATCH", "/api/v2/project/{project_id}/workflow/{workflow_id}/", 200, .body = "WorkflowUpdate",
	  .resp = "WorkflowReadWithWarnings", .summary = "Update a workflow" },
	{ "DELETE", "/api/v2/project/{project_id}/workflow/{workflow_id}/", 204, .summary = "Delete a workflow" },
	{ "POST", "/api/v2/project/{project_id}/workflow/{workflow_id}/star/", 200, .summary = "Star a workflow" },
	{ "POST", "/api/v2/project/{project_id}/workflow/{workflow_id}/unstar/", 200, .summary = "Unstar a workflow" },
	{ "GET", "/api/v2/project/{project_id}/workflow/{workflow_id}/export/", 200, .resp = "WorkflowExport", .summary = "Export a workflow" },
	{ "GET", "/api/v2/project/{project_id}/workflow/{workflow_id}/type-filters-flow/", 200,
	  .resp = "[TypeFiltersFlow]",
	  .summary = "The type filters before and after each task" },
	{ "GET", "/api/v2/project/{project_id}/workflow/{workflow_id}/job/", 200, .resp = "[JobRead]", .summary = "A workflow's jobs" },
	{ "GET", "/api/v2/job/", 200, .query = "log?:bool", .resp = "[JobRead]", .summary = "Your jobs" },
	{ "GET", "/api/v2/job/squeue/", 200, .query = "scope?:enum(all,user,accounts)", .resp = "str", .media = "text/plain", .summary = "SLURM's queue" },
	{ "GET", "/api/v2/project/{project_id}/job/", 200, .query = "log?:bool", .resp = "[JobRead]", .summary = "A project's jobs" },
	{ "POST", "/api/v2/project/{project_id}/job/submit/", 202, .query = "workflow_id:int dataset_id:int",
	  .body = "JobCreate", .resp = "JobRead", .summary = "Submit a job" },
	{ "GET", "/api/v2/project/{project_id}/job/{job_id}/", 200, .query = "show_tmp_logs?:bool", .resp = "JobRead", .summary = "Read a job" },
	{ "GET", "/api/v2/project/{project_id}/job/{job_id}/download/", 200, .resp = "binary", .media = ZIP,
	  .summary = "Download a job's folder (zip)" },
	{ "GET", "/api/v2/project/{project_id}/job/{job_id}/stop/", 202, .summary = "Stop a job" },
	{ "POST", "/api/v2/project/{project_id}/workflow/{workflow_id}/wftask/", 201, .query = "order?:nonneg|null",
	  .body = "[WorkflowTaskCreate]", .resp = "[WorkflowTaskRead]", .summary = "Append workflow tasks" },
	{ "GET", "/api/v2/project/{project_id}/workflow/{workflow_id}/wftask/{workflow_task_id}/", 200,
	  .resp = "WorkflowTaskRead", .summary = "Read a workflow task" },
	{ "PATCH", "/api/v2/project/{project_id}/workflow/{workflow_id}/wftask/{workflow_task_id}/", 200,
	  .body = "WorkflowTaskUpdate", .resp = "WorkflowTaskRead", .summary = "Update a workflow task" },
	{ "DELETE", "/api/v2/project/{project_id}/workflow/{workflow_id}/wftask/{workflow_task_id}/", 204,
	  .summary = "Delete a workflow task" },
	{ "GET", "/api/v2/project/{project_id}/workflow/{workflow_id}/version-update-candidates/", 200,
	  .resp = "[[TaskVersionRead]]", .summary = "Newer versions of each task" },
	{ "POST", "/api/v2/project/{project_id}/workflow/{workflow_id}/wftask/replace-task/", 201,
	  .query = "workflow_task_id:int task_id:int", .body = "WorkflowTaskReplace", .resp = "WorkflowTaskRead",
	  .summary = "Replace a workflow task's task" },
	/* workflow templates */
	{ "GET", "/api/v2/workflow-template/", 200,
	  .query = "template_id?:int|null is_owner?:bool user_email?:str|null name?:str|null version?:int|null " PAGED,
	  .resp = "TemplatePage", .summary = "List templates" },
	{ "POST", "/api/v2/workflow-template/", 201, .query = "workflow_id:int user_group_id?:int|null",
	  .body = "WorkflowTemplateCreate", .resp = "WorkflowTemplateRead", .summary = "Make a template of a workflow" },
	{ "POST", "/api/v2/workflow-template/import/", 201, .query = "user_group_id?:int|null",
	  .body = "WorkflowTemplateImport", .resp = "WorkflowTemplateRead", .summary = "Import a template" },
	{ "GET", "/api/v2/workflow-template/{template_id}/", 200, .resp = "WorkflowTemplateRead", .summary = "Read a template" },
	{ "PATCH", "/api/v2/workflow-template/{template_id}/", 200, .body = "WorkflowTemplateUpdate",
	  .resp = "WorkflowTemplateRead", .summary = "Update a template" },
	{ "DELETE", "/api/v2/workflow-template/{template_id}/", 204, .summary = "Delete a template" },
	{ "GET", "/api/v2/workflow-template/{template_id}/export/", 200, .resp = "WorkflowTemplateExport", .summary = "Export a template" },
	/* /auth */
	{ "POST", "/auth/register/", 201, .body = "UserCreate", .resp = "UserRead", .summary = "Register a user" },
	{ "GET", "/auth/current-user/", 200, .query = "group_ids_names?:bool", .resp = "UserRead", .summary = "You" },
	{ "PATCH", "/auth/current-user/", 200, .body = "UserUpdateStrict", .resp = "UserRead", .summary = "Update yourself" },
	{ "GET", "/auth/current-user/profile-info/", 200, .resp = "UserProfileInfo", .summary = "Your profile" },
	{ "GET", "/auth/current-user/allowed-viewer-paths/", 200, .query = "include_shared_projects?:bool",
	  .resp = JSON_LIST, .summary = "The paths a viewer may show you" },
	{ "POST", "/auth/token/login/", 200, .form = "Body_login", .resp = "BearerResponse", .summary = "Log in" },
	{ "POST", "/auth/token/logout/", 204, .summary = "Log out" },
	{ "GET", "/auth/users/", 200, .query = "profile_id?:int|null", .resp = "[UserRead]", .summary = "List users" },
	{ "GET", "/auth/users/{user_id}/", 200, .query = "group_ids_names?:bool", .resp = "UserRead", .summary = "Read a user" },
	{ "PATCH", "/auth/users/{user_id}/", 200, .body = "UserUpdate", .resp = "UserRead", .summary = "Update a user" },
	{ "POST", "/auth/users/{user_id}/set-groups/", 200, .body = "UserUpdateGroups", .resp = "UserRead",
	  .summary = "Set a user's groups" },
	{ "GET", "/auth/group/", 200, .query = "user_ids?:bool", .resp = "[UserGroupRead]", .summary = "List groups" },
	{ "POST", "/auth/group/", 201, .body = "UserGroupCreate", .resp = "UserGroupRead", .summary = "Create a group" },
	{ "GET", "/auth/group/{group_id}/", 200, .resp = "UserGroupRead", .summary = "Read a group" },
	{ "DELETE", "/auth/group/{group_id}/", 204, .summary = "Delete a group" },
	{ "POST", "/auth/group/{group_id}/add-user/{user_id}/", 200, .resp = "UserGroupRead", .summary = "Add a user to a group" },
	{ "POST", "/auth/group/{group_id}/remove-user/{user_id}/", 200, .resp = "UserGroupRead",
	  .summary = "Remove a user from a group" },
	{ "GET", "/auth/{client}/authorize/", 200, .query = "scopes?:[str]", .resp = "OAuth2AuthorizeResponse",
	  .summary = "Start an OAuth login" },
	{ "GET", "/auth/{client}/callback/", 204, .query = "code?:str|null code_verifier?:str|null state?:str|null error?:str|null",
	  .summary = "End an OAuth login (sets the cookie)" },
	/* /admin/v2 */
	{ "GET", "/admin/v2/impersonate/{user_id}/", 200, .resp = "BearerResponse", .summary = "A token of another user" },
	{ "GET", "/admin/v2/users-csv/", 200,
	  .query = "exclude_zero_jobs?:bool start_timestamp_min?:dt|null start_timestamp_max?:dt|null", .resp = "str",
	  .media = "text/csv", .summary = "Users and their job counts (CSV)" },
	{ "GET", "/admin/v2/project/", 200, .query = "project_id?:int|null name?:str|null user_email?:str|null " PAGED,
	  .resp = "PaginationResponse_ProjectReadSuperuser_", .summary = "Query projects" },
	{ "PATCH", "/admin/v2/project/{project_id}/", 200, .query = "user_id:int", .summary = "Transfer a project" },
	{ "GET", "/admin/v2/linkuserproject/", 200,
	  .query = "user_id?:int|null project_id?:int|null project_name?:str|null is_owner?:bool|null is_verified?:bool|null " PAGED,
	  .resp = "PaginationResponse_LinkUserProjectRead_", .summary = "Query project links" },
	{ "POST", "/admin/v2/linkuserproject/verify/", 200, .query = "guest_user_id:int project_id:int",
	  .summary = "Verify a guest's invitation" },
	/* /admin/v2/resource, /admin/v2/profile */
	{ "GET", "/admin/v2/resource/", 200, .resp = "[ResourceRead]", .summary = "List resources" },
	{ "POST", "/admin/v2/resource/", 201, .body = "ResourceCreate", .resp = "ResourceRead", .summary = "Create a resource" },
	{ "GET", "/admin/v2/resource/{resource_id}/", 200, .resp = "ResourceRead", .summary = "Read a resource" },
	{ "PUT", "/admin/v2/resource/{resource_id}/", 200, .body = "ResourceCreate", .resp = "ResourceRead", .summary = "Replace a resource" },
	{ "DELETE", "/admin/v2/resource/{resource_id}/", 204, .summary = "Delete a resource" },
	{ "GET", "/admin/v2/resource/{resource_id}/profile/", 200, .resp = "[ProfileRead]", .summary = "A resource's profiles" },
	{ "POST", "/admin/v2/resource/{resource_id}/profile/", 201, .body = "ProfileCreate", .resp = "ProfileRead",
	  .summary = "Create a profile" },
	{ "GET", "/admin/v2/profile/", 200, .resp = "[ProfileRead]", .summary = "List profiles" },
	{ "GET", "/admin/v2/profile/{profile_id}/", 200, .resp = "ProfileRead", .summary = "Read a profile" },
	{ "PUT", "/admin/v2/profile/{profile_id}/", 200, .body = "ProfileCreate", .resp = "ProfileRead", .summary = "Replace a profile" },
	{ "DELETE", "/admin/v2/profile/{profile_id}/", 204, .summary = "Delete a profile" },
	{ "POST", "/admin/v2/accounting/", 200, .query = PAGED, .body = "AccountingQuery",
	  .resp = "PaginationResponse_AccountingRecordRead_", .summary = "Query accounting records" },
	{ "POST", "/admin/v2/accounting/slurm/", 200, .body = "AccountingQuerySLURM", .resp = "[int]",
	  .summary = "SLURM job ids of accounting records" },
	{ "GET", "/admin/v2/task/", 200,
	  .query = "id?:int|null version?:str|null name?:str|null task_type?:TaskType|null category?:str|null "
		   "modality?:str|null author?:str|null resource_id?:int|null owner_id?:int|null task_group?:str|null "
		   "core?:bool|null private?:bool|null active?:bool|null " PAGED,
	  .resp = "PaginationResponse_TaskInfo_", .summary = "Query tasks" },
	{ "POST", "/admin/v2/task/make-core/", 200, .body = "[nonneg]", .summary = "Make tasks core" },
	{ "POST", "/admin/v2/task/make-not-core/", 200, .body = "[nonneg]", .summary = "Make tasks not core" },
	{ "GET", "/admin/v2/job/", 200,
	  .query = "id?:int|null resource_id?:int|null project_owner_id?:int|null job_user_email?:email|null "
		   "project_id?:int|null dataset_id?:int|null workflow_id?:int|null status?:JobStatusType|null "
		   "start_timestamp_min?:dt|null start_timestamp_max?:dt|null end_timestamp_min?:dt|null "
		   "end_timestamp_max?:dt|null log?:bool " PAGED,
	  .resp = "PaginationResponse_JobRead_", .summary = "Query jobs" },
	{ "GET", "/admin/v2/job/{job_id}/", 200, .query = "show_tmp_logs?:bool", .resp = "JobRead", .summary = "Read a job" },
	{ "PATCH", "/admin/v2/job/{job_id}/", 200, .body = "JobUpdate", .resp = "JobRead", .summary = "Mark a job failed" },
	{ "GET", "/admin/v2/job/{job_id}/download/", 200, .resp = "binary", .media = ZIP, .summary = "Download a job's folder (zip)" },
	{ "GET", "/admin/v2/job/{job_id}/stop/", 202, .summary = "Stop a job" },
	{ "GET", "/admin/v2/task-group/activity/", 200,
	  .query = "task_group_activity_id?:int|null user_id?:int|null taskgroupv2_id?:int|null pkg_name?:str|null "
		   "status?:TaskGroupActivityStatus|null action?:TaskGroupActivityAction|null "
		   "timestamp_started_min?:dt|null " PAGED,
	  .resp = "PaginationResponse_TaskGroupActivityRead_", .summary = "Query task-group activities" },
	{ "GET", "/admin/v2/task-group/", 200,
	  .query = "task_group_id?:int|null user_id?:int|null user_group_id?:int|null private?:bool|null active?:bool|null "
		   "pkg_name?:str|null origin?:TaskGroupOriginEnum|null timestamp_last_used_min?:dt|null "
		   "timestamp_last_used_max?:dt|null resource_id?:int|null in_use?:bool|null " PAGED,
	  .resp = "PaginationResponse_TaskGroupReadSuperuser_", .summary = "Query task groups" },
	{ "GET", "/admin/v2/task-group/{task_group_id}/", 200, .resp = "TaskGroupReadSuperuser", .summary = "Read a task group" },
	{ "PATCH", "/admin/v2/task-group/{task_group_id}/", 200, .body = "TaskGroupUpdate", .resp = "TaskGroupReadSuperuser",
	  .summary = "Update a task group" },
	{ "POST", "/admin/v2/task-group/{task_group_id}/make-core/", 200,
	  .summary = "Make a task group core" },
	{ "POST", "/admin/v2/task-group/{task_group_id}/make-not-core/", 200,
	  .summary = "Make a task group not core" },
	{ "POST", "/admin/v2/task-group/{task_group_id}/deactivate/", 202, .resp = "TaskGroupActivityRead",
	  .summary = "Deactivate a task group" },
	{ "POST", "/admin/v2/task-group/{task_group_id}/reactivate/", 202, .resp = "TaskGroupActivityRead",
	  .summary = "Reactivate a task group" },
	{ "POST", "/admin/v2/task-group/{task_group_id}/delete/", 202, .resp = "TaskGroupActivityRead",
	  .summary = "Delete a task group" },
	{ "POST", "/admin/v2/task-group/{task_group_id}/reset/pip/", 202, .body = "TaskGroupOverridesPip",
	  .resp = "TaskGroupActivityRead", .summary = "Rebuild a pip task group's environment" },
	{ "POST", "/admin/v2/task-group/{task_group_id}/reset/pixi/", 202, .body = "TaskGroupOverridesPixi",
	  .resp = "TaskGroupActivityRead", .summary = "Rebuild a pixi task group's environment" },
	/* beyond upstream (docs/operations.md): a 404 unless FRACTAL_ENABLE_METRICS */
	{ "GET", "/metrics", 200, .resp = "str", .media = "text/plain",
	  .summary = "Prometheus metrics (requests, jobs, activities, database, image cache)" },
	{ 0 },
};
